"""Acceptance round trips: short train.py runs (normaliser on) -> final_model.zip -> real SB3 `ALGO.load` ->
`predict` against our policy, on Pendulum-v1 and on the soccer tasks (there through the generated
Preprocessor, stepping the real envs as the platform client does)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO, SAC, TD3

import evaluate
import train
from envs.preprocess import OBS_DIM, preprocess
from envs.tasks import get_task
from rlcore.checkpoint import load_policy
from rlcore.cliutil import run_cli
from rlcore.seeds import episode_seed
from scoring.harness import evaluate as harness_evaluate
from scoring.report import episode_report
from submission import load_like_platform, read_meta
from tests.platform_client import platform_env, run_benchmark

pytestmark = pytest.mark.slow

SB3 = {"td3": TD3, "sac": SAC, "ppo": PPO}
ALGOS = ("td3", "sac", "ppo")
BUDGET = {"td3": ["--total-timesteps", "300", "--learning-starts", "100"],
          "sac": ["--total-timesteps", "300", "--learning-starts", "100"],
          "ppo": ["--total-timesteps", "256", "--n-steps", "128", "--batch-size", "64"]}
SOCCER_TASK = {"td3": "goalie_penalty_kick", "sac": "obstacle_penalty_kick", "ppo": "kick_to_target"}
MAX_ACTION_DIFFERENCES: dict[str, float] = {}
"""max |SB3 action - our action| / (high - low) per run, printed at the end of the module (pytest -s)."""


def normalise(obs: np.ndarray, stats: dict) -> np.ndarray:
    """The documented policy input of a generic env's zip: the training formula, in float32."""
    mean = np.asarray(stats["mean"], np.float64).astype(np.float32)
    std = np.sqrt(np.asarray(stats["var"], np.float64) + stats["epsilon"]).astype(np.float32)
    return np.clip((obs.astype(np.float32) - mean) / std, -stats["clip"], stats["clip"])


def worst(label: str, theirs: np.ndarray, ours: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    relative = float(np.max(np.abs(theirs - ours) / (high - low)))
    MAX_ACTION_DIFFERENCES[label] = max(relative, MAX_ACTION_DIFFERENCES.get(label, 0.0))
    return relative


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    for label, value in sorted(MAX_ACTION_DIFFERENCES.items()):
        print(f"max |SB3 - ours| / (high - low), {label}: {value:.2e}")


@pytest.fixture(scope="module")
def pendulum_runs(tmp_path_factory):
    runs = {}
    for name in ALGOS:
        run = tmp_path_factory.mktemp(f"pendulum_{name}")
        argv = ["--env-id", "Pendulum-v1", "--algo", name, "--normalize-obs", "--eval-episodes", "1",
                "--save-dir", str(run), *BUDGET[name]]
        assert run_cli(train.main, argv) == 0
        runs[name] = run
    return runs


@pytest.fixture(scope="module")
def soccer_runs(tmp_path_factory):
    runs = {}
    for name in ALGOS:
        run = tmp_path_factory.mktemp(f"soccer_{name}")
        argv = ["--algo", name, "--tasks", SOCCER_TASK[name], "--n-envs", "1", "--net-arch", "32,32",
                "--normalize-obs", "--eval-episodes", "1", "--eval-seeds", "0", "--save-dir", str(run),
                *BUDGET[name]]
        assert run_cli(train.main, argv) == 0
        runs[name] = run
    return runs


@pytest.mark.parametrize("name", ALGOS)
def test_pendulum_zip_predicts_our_actions(name, pendulum_runs):
    run = pendulum_runs[name]
    policy, _ = load_policy(run / "checkpoint.pt")
    model = SB3[name].load(run / "final_model.zip", device="cpu")
    low, high = model.action_space.low, model.action_space.high
    recorded = []
    for seed in range(3):  # observations of our policy's own episodes
        env = gym.make("Pendulum-v1")
        obs, _ = env.reset(seed=seed)
        for _ in range(200):
            recorded.append(obs)
            obs, *_ = env.step(policy.predict(obs))
        env.close()
    rng = np.random.default_rng(0)
    random = rng.uniform(-1.5, 1.5, (400, 3)) * np.array([1.0, 1.0, 8.0])
    obs = np.concatenate([np.stack(recorded)[:600], random]).astype(np.float32)
    stats = read_meta(run / "final_model.zip")["normalizer"]
    assert stats["enabled"]
    theirs, _ = model.predict(normalise(obs, stats), deterministic=True)
    assert worst(f"pendulum {name}", theirs, policy.predict(obs), low, high) <= 1e-4


def test_pendulum_evaluate_zip_equals_checkpoint(pendulum_runs, capsys):
    lines = []
    for model in ("checkpoint.pt", "final_model.zip", "submission_final/model.zip"):
        argv = ["--model", str(pendulum_runs["sac"] / model), "--env-id", "Pendulum-v1", "--episodes", "2"]
        assert run_cli(evaluate.main, argv) == 0
        lines.append(capsys.readouterr().out.strip().split(" steps, ")[1])
    assert lines[0] == lines[1] == lines[2]


@pytest.mark.parametrize("name", ALGOS)
def test_soccer_zip_with_the_preprocessor_predicts_our_torques(name, soccer_runs):
    """1,000 observations: steps of our policy's episodes in the raw env (through the Preprocessor) and
    random 89-dim observations (through the documented normalisation)."""
    run = soccer_runs[name]
    policy, _ = load_policy(run / "checkpoint.pt")
    model = SB3[name].load(run / "submission_final" / "model.zip", device="cpu")
    pre = load_like_platform((run / "submission_final" / "preprocessor.py").read_text())
    low, high = model.action_space.low, model.action_space.high

    def torques(unit_actions: np.ndarray) -> np.ndarray:  # the torque action mode's map
        return (high + low) / 2 + (high - low) / 2 * unit_actions

    env = platform_env(SOCCER_TASK[name])
    raw, infos, seed = [], [], 0
    while len(raw) < 600:
        obs, info = env.reset(seed=seed)
        done, seed = False, seed + 1
        while not done and len(raw) < 600:
            raw.append(obs)
            infos.append(info)
            obs, _, terminated, truncated, info = env.step(torques(policy.predict(preprocess(obs, info))))
            done = terminated or truncated
    env.close()
    steps = list(zip(raw, infos, strict=True))
    theirs = np.stack([model.predict(pre.modify_state(o, i), deterministic=True)[0] for o, i in steps])
    ours = torques(policy.predict(np.stack([preprocess(o, i) for o, i in steps])))
    assert worst(f"soccer {name}", theirs, ours, low, high) <= 1e-4
    stats = read_meta(run / "final_model.zip")["normalizer"]
    random = np.random.default_rng(1).normal(np.asarray(stats["mean"]), 3 * np.sqrt(stats["var"]) + 0.1,
                                             (400, OBS_DIM)).astype(np.float32)
    theirs, _ = model.predict(normalise(random, stats), deterministic=True)
    assert worst(f"soccer {name}", theirs, torques(policy.predict(random)), low, high) <= 1e-4


@pytest.mark.parametrize("name", ALGOS)
def test_platform_run_scores_equal_evaluate_on_the_checkpoint(name, soccer_runs):
    """SB3 zip + generated Preprocessor stepping the raw envs as the platform does == our harness on the
    native checkpoint: same seeds, same per-episode official scores."""
    run, task = soccer_runs[name], SOCCER_TASK[name]
    policy, _ = load_policy(run / "checkpoint.pt")
    ours = harness_evaluate(policy.predict, [task], 2, [0], max_episode_steps=150).records[task]
    model = SB3[name].load(run / "submission_final" / "model.zip", device="cpu")
    pre = load_like_platform((run / "submission_final" / "preprocessor.py").read_text())
    seeds = [episode_seed(0, get_task(task).index, e) for e in range(2)]
    assert [r.seed for r in ours] == seeds
    platform = run_benchmark(task, seeds, lambda obs, info: model.predict(pre.modify_state(obs, info),
                                                                          deterministic=True)[0], 150)
    np.testing.assert_allclose(platform, [episode_report(r.terms, task)["comp_total"] for r in ours], atol=1e-6)


def test_soccer_evaluate_prints_the_same_table_for_zip_and_checkpoint(soccer_runs, capsys):
    run = soccer_runs["td3"]
    tables = []
    for model in ("checkpoint.pt", "final_model.zip"):
        argv = ["--model", str(run / model), "--tasks", SOCCER_TASK["td3"], "--episodes", "1", "--eval-seeds", "0"]
        assert run_cli(evaluate.main, argv) == 0
        out = capsys.readouterr().out
        tables.append(out[out.index("task "):])
    assert tables[0] == tables[1]
