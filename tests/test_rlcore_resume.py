"""Resuming the runner from a checkpoint continues the run exactly (tests/scripted_env.py, both loop shapes).

Run A goes to 40 timesteps at once; run B stops at 20 (an episode boundary of both scripted envs, so the
env's next observations agree) and resumes from its checkpoint into a freshly built algorithm and runner,
with every global RNG scrambled first. From there B must take the same actions, make the same updates and
keep the same episode statistics as A; its env is reset with seed + timesteps, not the first episode's seed.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rlcore.algos import build_algorithm
from rlcore.checkpoint import load_checkpoint
from rlcore.config import BufferConfig, NetConfig, ObsNormConfig, PPOConfig, SACConfig, TD3Config
from rlcore.runner import RunConfig, Runner
from tests.scripted_env import script, scripted_vec

SMALL = NetConfig(net_arch=(8,))
LOW, HIGH = np.array([-1.0], np.float32), np.array([1.0], np.float32)
SCRIPTS = (
    script((3, "terminated"), (2, "truncated"), (5, "both")),
    script((4, "truncated"), (6, "terminated")),
)
"""Both envs end an episode at vector step 10 (timestep 20) and every 10 vector steps after it."""
SEED = 3


def _config(algo_name: str):
    norm = ObsNormConfig(enabled=True)
    buffer = BufferConfig(buffer_size=100, batch_size=4, learning_starts=8)
    return {"td3": TD3Config(net=SMALL, obs_norm=norm, buffer=buffer, policy_delay=2),
            "sac": SACConfig(net=SMALL, obs_norm=norm, buffer=buffer),
            "ppo": PPOConfig(net=SMALL, obs_norm=norm, n_steps=5, batch_size=4, n_epochs=2)}[algo_name]


def _run(algo_name: str, env, total: int, save_dir, resume: dict | None = None) -> Runner:
    algo = build_algorithm(algo_name, 3, LOW, HIGH, _config(algo_name))
    if resume is not None:
        algo.load_state_dict(resume["algo_state"])
    runner = Runner(algo, env, RunConfig(total_timesteps=total, seed=SEED, save_replay=True, log_interval=10_000),
                    save_dir=save_dir, resume=resume)
    runner.train()
    return runner


def _state_tensors(algo) -> dict[str, torch.Tensor]:
    """Every tensor of the algorithm's state_dict (networks, targets, optimisers, normaliser), flattened."""
    out = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, torch.Tensor):
            out[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}", item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}/{i}", item)

    walk("", algo.state_dict())
    return out


@pytest.mark.parametrize("algo_name", ["td3", "sac", "ppo"])
def test_resume_continues_exactly(algo_name: str, tmp_path) -> None:
    torch.manual_seed(0)
    env_a = scripted_vec(*SCRIPTS)
    uninterrupted = _run(algo_name, env_a, 40, tmp_path / "a")

    torch.manual_seed(0)
    env_b = scripted_vec(*SCRIPTS)
    first = _run(algo_name, env_b, 20, tmp_path / "b")
    assert first.algo.n_updates > 0
    payload = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    torch.manual_seed(12345)  # a resumed process starts from other RNG states; the checkpoint's must win
    np.random.seed(12345)
    random.seed(12345)
    resumed = _run(algo_name, env_b, 40, tmp_path / "b", resume=payload)

    # the env is reset with seed + timesteps (SyncVectorEnv seeds env i with seed + i), not with the run's seed
    seeded = [[s for s in env.reset_seeds if s is not None] for env in (*env_a.envs, *env_b.envs)]
    assert seeded == [[SEED], [SEED + 1], [SEED, SEED + 20], [SEED + 1, SEED + 21]]
    # the same actions after the resume (torch RNG and normaliser restored; the policy acted, warm-up is over)
    for a, b in zip(env_a.envs, env_b.envs, strict=True):
        assert len(a.actions) == len(b.actions) == 20
        np.testing.assert_array_equal(np.stack(b.actions[10:]), np.stack(a.actions[10:]))
    # the same updates (replay contents and sampling, TD3 noise, SAC samples, PPO minibatch order)
    assert resumed.algo.n_updates == uninterrupted.algo.n_updates > first.algo.n_updates
    state_a, state_b = _state_tensors(uninterrupted.algo), _state_tensors(resumed.algo)
    assert state_a.keys() == state_b.keys()
    for key, tensor in state_a.items():
        torch.testing.assert_close(state_b[key], tensor, rtol=0, atol=0, msg=key)
    if algo_name != "ppo":
        assert resumed.replay.size == uninterrupted.replay.size == 40
        torch.testing.assert_close(resumed.replay.obs, uninterrupted.replay.obs, rtol=0, atol=0)
    # episode statistics continue across the resume: 6 + 4 episodes in 20 vector steps
    assert resumed.episodes == uninterrupted.episodes == 10
    assert list(resumed.episode_returns) == list(uninterrupted.episode_returns)
    assert list(resumed.episode_lengths) == list(uninterrupted.episode_lengths) == [3, 4, 2, 5, 6] * 2
    for env in (*env_a.envs, *env_b.envs):
        env.close()


def test_resume_restores_python_numpy_and_torch_rng_states(tmp_path) -> None:
    env = scripted_vec(*SCRIPTS)
    _run("td3", env, 20, tmp_path)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    expected = (random.random(), np.random.random(), torch.rand(()).item())  # first draws after the checkpoint
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    algo = build_algorithm("td3", 3, LOW, HIGH, _config("td3"))
    Runner(algo, env, RunConfig(total_timesteps=40, seed=SEED), resume=payload)
    assert (random.random(), np.random.random(), torch.rand(()).item()) == expected
    env.close()


def test_ppo_checkpoints_only_between_rollouts(tmp_path) -> None:
    """A checkpoint taken while a rollout is collected would resume without that rollout: every periodic
    checkpoint of a PPO run holds the update of each rollout its timestep count includes."""
    env = scripted_vec(*SCRIPTS)
    algo = build_algorithm("ppo", 3, LOW, HIGH, _config("ppo"))  # rollouts of 5 steps x 2 envs
    saved = []

    def on_checkpoint(path) -> None:
        payload = load_checkpoint(path)
        saved.append((payload["runner"]["timesteps"], payload["algo_state"]["n_rollouts"]))

    Runner(algo, env, RunConfig(total_timesteps=30, checkpoint_freq=6, log_interval=10_000), save_dir=tmp_path,
           on_checkpoint=on_checkpoint).train()
    assert saved == [(10, 1), (20, 2), (30, 3)]  # 6, 12, 18 and 24 fall inside rollouts: taken at their ends
    env.close()
