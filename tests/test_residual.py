"""Residual RL over the striker (skills/residual.py): a zero correction plays the striker exactly, a correction
is added and clipped, the exported module commands what the env wrapper commands, and train.py / evaluate.py
carry the residual through a run (bad flags are one error line)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import evaluate
import train
from envs.factory import make_env
from rlcore.cliutil import run_cli
from rlcore.runner import Interrupted
from scoring.harness import evaluate as harness_evaluate
from skills.residual import ResidualStriker, ResidualStrikerModule, check_scale, residual_wrapper
from skills.striker import StrikerPolicy, striker_config, striker_settings
from workflow import presets

REPEAT = 5


def _settings() -> dict:
    return {**striker_settings(), "action_repeat": REPEAT}


def test_a_zero_correction_plays_the_striker_exactly():
    task = "goalie_penalty_kick"
    striker = harness_evaluate(StrikerPolicy(striker_config(), action_repeat=REPEAT), [task], 1, [0], sim="fast",
                               max_episode_steps=1500, **_settings()).records[task][0]
    residual = harness_evaluate(lambda obs: np.zeros((len(obs), 3), np.float32), [task], 1, [0], sim="fast",
                                max_episode_steps=1500, outer=residual_wrapper(0.3, REPEAT),
                                **_settings()).records[task][0]
    assert residual == striker


class _Recorder(gym.Env):
    """89-dim observations with the ball 2 m ahead; records the commands it is given."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (89,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)

    def __init__(self) -> None:
        self.commands: list[np.ndarray] = []
        self.obs = np.zeros(89, np.float32)
        self.obs[48], self.obs[36], self.obs[86] = 2.0, 4.0, 1.0  # ball, goal, goalie task

    def reset(self, *, seed=None, options=None):
        return self.obs.copy(), {}

    def step(self, action):
        self.commands.append(np.asarray(action))
        return self.obs.copy(), 0.0, False, False, {}


def test_the_correction_is_scaled_added_and_clipped():
    inner = _Recorder()
    env = ResidualStriker(inner, scale=0.5, action_repeat=REPEAT)
    reference = ResidualStriker(_Recorder(), scale=0.5, action_repeat=REPEAT)
    env.reset()
    reference.reset()
    for action in ([0.0, 0.0, 0.0], [0.4, -1.0, 1.0], [1.0, 1.0, -1.0]):
        base = reference.striker_command().astype(np.float32).astype(np.float64)
        reference.step(np.zeros(3, np.float32))  # keeps the two strikers' states in step
        env.step(np.asarray(action, np.float32))
        want = np.clip(base + 0.5 * np.asarray(action, np.float64), -1.0, 1.0).astype(np.float32)
        np.testing.assert_array_equal(inner.commands[-1], want)
    assert np.all(np.abs(inner.commands[-1]) <= 1.0)


@pytest.mark.parametrize("scale", [0.0, -0.1, 2.5, float("nan"), True])
def test_bad_scales_are_value_errors(scale):
    with pytest.raises(ValueError, match="residual scale"):
        check_scale(scale)


class _Tilt(torch.nn.Module):
    """A correction that depends on the observation (so the twin test is not about a constant)."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(obs[:, 48:51] * torch.tensor([0.7, -1.3, 0.9]))


def test_the_exported_module_commands_what_the_env_wrapper_commands():
    """Over an episode: the wrapper (striker + 0.4 x correction, in the env) and ResidualStrikerModule (in the
    exported torque module) give the same command on the same observations."""
    correction = _Tilt()
    env = make_env("goalie_penalty_kick", action_mode="command", action_repeat=REPEAT, sim="fast",
                   max_episode_steps=2000, command=_settings()["command"], outer=residual_wrapper(0.4, REPEAT))()
    sent: list[np.ndarray] = []
    inner_step = env.env.step
    env.env.step = lambda action: (sent.append(np.asarray(action)), inner_step(action))[1]
    module = torch.jit.script(ResidualStrikerModule(correction, 0.4, REPEAT).eval())
    obs, _ = env.reset(seed=0)
    worst, steps = 0.0, 0
    while True:
        with torch.inference_mode():
            x = torch.as_tensor(obs).reshape(1, -1)
            twin = module(x).numpy()[0]
            action = correction(x).numpy()[0]
        obs, _, terminated, truncated, _ = env.step(action)
        worst = max(worst, float(np.max(np.abs(twin - sent[-1]))))
        steps += 1
        if terminated or truncated:
            break
    env.close()
    assert steps == 2000 // REPEAT
    assert worst <= 1e-6, worst


def _train_argv(save, *extra: str) -> list[str]:
    return ["--algo", "td3", "--action-mode", "command", "--low-level-controller", "walk", "--action-repeat",
            str(REPEAT), "--tasks", "goalie_penalty_kick", "--n-envs", "1", "--max-episode-steps", "200",
            "--learning-starts", "50", "--eval-freq", "0", "--eval-episodes", "1", "--eval-seeds", "0",
            "--net-arch", "16,16", "--buffer-size", "1000", "--save-dir", str(save), *extra]


def test_a_residual_run_trains_evaluates_and_resumes_with_its_residual(tmp_path, capsys):
    save = tmp_path / "run"
    assert run_cli(train.main, _train_argv(save, "--residual-striker", "0.3", "--total-timesteps", "100")) == 0
    assert (save / "best_model_competition.pt").is_file()
    best = evaluate.load_model(str(save / "best_model_competition.checkpoint.pt"), "cpu")
    label, best_settings = best.label, best.settings
    assert best_settings["outer"] is not None and label.startswith("td3 @ 100")  # the best model, scorable
    # the actor starts at a zero correction and waits for the critic: the run's evaluation is the striker's score
    final = [json.loads(line) for line in (save / "metrics.jsonl").read_text().splitlines()][-1]
    striker = harness_evaluate(StrikerPolicy(striker_config(), action_repeat=REPEAT), ["goalie_penalty_kick"], 1,
                               [0], sim="fast", max_episode_steps=200, **_settings())
    assert final["comp_eval/C_overall"] == pytest.approx(striker.c_overall, abs=1e-9)
    latest = evaluate.load_model(str(save / "checkpoint.pt"), "cpu")
    payload, settings = latest.payload, latest.settings
    assert payload["metadata"]["residual_striker"] == 0.3 and settings["outer"] is not None
    capsys.readouterr()
    resume = ["--resume-model", str(save / "checkpoint.pt"), "--total-timesteps", "150"]
    assert run_cli(train.main, _train_argv(save, *resume)) == 2  # the residual is part of the run
    err = capsys.readouterr().err
    assert "--residual-striker 0.3" in err and err.count("\n") == 1
    assert run_cli(train.main, _train_argv(save, "--residual-striker", "0.3", *resume)) == 0


@pytest.mark.parametrize("extra, message", [
    (["--residual-striker", "0.3", "--command-limits", "0.5,0.2,0.5"], "--command-limits"),
    (["--residual-striker", "3"], "(0, 2]"),
    (["--residual-striker", "nan"], "residual-striker"),
])
def test_bad_residual_flags_are_one_error_line(tmp_path, capsys, extra, message):
    assert run_cli(train.main, [*_train_argv(tmp_path / "bad", "--total-timesteps", "100"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["--residual-striker", "0.3"],
                                  ["--action-mode", "command", "--residual-striker", "0.3"],
                                  ["--env-id", "Pendulum-v1", "--residual-striker", "0.3"]],
                         ids=["torque", "hub-controller", "env-id"])
def test_a_residual_needs_command_mode_over_the_walk_engine(tmp_path, capsys, argv):
    assert run_cli(train.main, [*argv, "--total-timesteps", "100", "--save-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--residual-striker" in err and err.count("\n") == 1


def test_no_arguments_is_the_default_recipe_and_flags_after_a_recipe_win():
    assert presets.expand_recipe([]) == presets.RECIPES[presets.DEFAULT_RECIPE]
    argv = presets.expand_recipe(["--recipe", "striker-residual", "--total-timesteps", "100"])
    args = train.build_parser().parse_args(argv)
    assert args.residual_striker == 0.3 and args.action_mode == "command" and args.total_timesteps == 100
    assert presets.expand_recipe(["--algo", "sac"]) == ["--algo", "sac"]


def test_the_default_recipe_runs_in_miniature(tmp_path):
    argv = ["--recipe", "striker-residual", "--tasks", "goalie_penalty_kick", "--n-envs", "1",
            "--max-episode-steps", "200", "--learning-starts", "50", "--total-timesteps", "100", "--eval-freq", "0",
            "--eval-episodes", "1", "--eval-seeds", "0", "--net-arch", "16,16", "--buffer-size", "1000",
            "--save-dir", str(tmp_path / "run")]
    assert run_cli(train.main, argv) == 0
    assert (tmp_path / "run" / "submission_final_torchscript" / "model.pt").is_file()


@pytest.mark.parametrize(("argv", "typed"), [([], "--recipe striker-residual"),
                                             (["--recipe", "striker-residual", "--seed", "3"],
                                              "--recipe striker-residual --seed 3")])
def test_an_interrupted_recipe_run_prints_the_resume_command_as_typed(argv, typed, monkeypatch, capsys):
    """The recipe by name and the user's own flags, not the recipe's flags spelled out before them."""
    def interrupted(options, on_evaluation=None):
        raise Interrupted(signal.SIGTERM, 5, Path("runs/x/checkpoint.pt"))

    monkeypatch.setattr(train, "train", interrupted)
    assert train.main(argv) == 128 + signal.SIGTERM
    line = capsys.readouterr().err.strip()
    assert line.endswith(f"resume with: python train.py {typed} --resume-model runs/x/checkpoint.pt"), line


@pytest.mark.parametrize("argv, message", [(["--recipe"], "needs a name"), (["--recipe", "fastest"], "unknown")])
def test_bad_recipes_are_one_error_line(capsys, argv, message):
    assert run_cli(train.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1
