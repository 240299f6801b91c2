"""Record real transitions of any policy on chosen tasks and reset seeds: one file for BC and for replay prefill.

Each (task, seed) pair is one episode, reset with that seed. Per step the policy's clean action (clipped to
[-1, 1]) is the LABEL (`actions`); the env executes clip(label + N(0, noise^2), -1, 1) (`executed_actions`).
Noise on the executed action with clean labels is what lets BC of a stabilising controller work: it shows the
learner how the demonstrator recovers from the states its own errors lead to (DART; docs/cloning.md:
clean demos fall within 300 steps, noise >= 0.05 of the bounds stands). `noise` is in [-1, 1] action units,
i.e. a fraction of the half-range of the bounds. Each episode's noise comes from its own generator seeded
(noise_seed, task index, reset seed), so a recording does not depend on the batch size.

Episodes of one task run in lock-step on up to `batch_size` envs (envs/lockstep.py: one policy call per step
for all of them).
`next_observations` is the env's true next observation (the final one at the end of an episode); truncation
(the time limit) is stored apart from termination.

Saved keys: observations, actions, executed_actions, rewards, next_observations, terminated, truncated,
task_one_hot, episode_index (rows); episode_tasks, episode_seeds, episode_lengths, episode_returns,
episode_terminated (per episode); action_mode, action_repeat, pd_scale, reward_profile, noise, policy; in command
mode `command`, the CommandOptions as JSON text (what bc.train hands on, so the BC actor knows its controller).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence

import numpy as np

from envs.command import CommandOptions
from envs.factory import make_env
from envs.fastsim import check_sim
from envs.lockstep import Step, policy_act, run_lockstep
from envs.tasks import get_task
from envs.wrappers import DEFAULT_PD_SCALE

Policy = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecordOptions:
    """Env settings and executed-action noise of a recording; ValueError on bad values."""

    action_mode: str = "torque"
    action_repeat: int = 1
    pd_scale: float = DEFAULT_PD_SCALE
    reward_profile: str = "competition"
    noise: float = 0.0
    """Std of the Gaussian noise on the executed action, in [-1, 1] units (0.1 = 10% of the bounds)."""
    noise_seed: int = 0
    max_episode_steps: int | None = None
    """Override of the 5000-step time limit (tests)."""
    batch_size: int = 8
    sim: str = "fast"
    """Simulator: our fast twin (equal to sai_mujoco step for step) or "official"."""
    command: CommandOptions | None = None
    """Command-mode options (walking controller, limits, macro) when action_mode is "command"."""

    def __post_init__(self) -> None:
        check_sim(self.sim)
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1] (a fraction of the action bounds), got {self.noise}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.noise_seed < 0:
            raise ValueError(f"noise seed must be >= 0, got {self.noise_seed}")


@dataclasses.dataclass
class Episode:
    """One recorded episode: per-step rows and its summary."""

    task: str
    seed: int
    obs: list[np.ndarray]
    actions: list[np.ndarray]
    executed: list[np.ndarray]
    rewards: list[float]
    next_obs: list[np.ndarray]
    terminated: bool = False
    truncated: bool = False

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.rewards))


def record_rollouts(policy: Policy, tasks: Sequence[str], seeds: Sequence[int], options: RecordOptions,
                    progress: Callable[[Episode], None] | None = None) -> list[Episode]:
    """One episode per (task, seed), in task-then-seed order."""
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, got {list(seeds)}")
    return [ep for task in tasks for ep in _record_task(policy, task, list(seeds), options, progress)]


def _record_task(policy: Policy, task: str, seeds: list[int], options: RecordOptions,
                 progress: Callable[[Episode], None] | None) -> list[Episode]:
    index = get_task(task).index
    thunk = make_env(task, action_mode=options.action_mode, reward_profile=options.reward_profile,
                     action_repeat=options.action_repeat, pd_scale=options.pd_scale,
                     max_episode_steps=options.max_episode_steps, sim=options.sim, command=options.command)
    episodes = [Episode(task, seed, [], [], [], [], []) for seed in seeds]
    rngs = [np.random.default_rng([options.noise_seed, index, seed]) for seed in seeds]
    labels: dict[int, np.ndarray] = {}
    policy_actions = policy_act(policy)

    def act(obs: np.ndarray, playing: list[int]) -> np.ndarray:
        clean = np.clip(np.asarray(policy_actions(obs, playing), dtype=np.float32), -1.0, 1.0)
        executed = clean.copy()
        for row, episode in enumerate(playing):
            labels[episode] = clean[row]
            if options.noise > 0:
                executed[row] = np.clip(clean[row] + options.noise * rngs[episode].standard_normal(clean.shape[1:]),
                                        -1.0, 1.0)
        return executed

    def on_step(step: Step) -> None:
        ep = episodes[step.episode]
        ep.obs.append(step.obs)
        ep.actions.append(labels[step.episode])
        ep.executed.append(step.action)
        ep.rewards.append(step.reward)
        ep.next_obs.append(step.next_obs)
        if step.done:
            ep.terminated, ep.truncated = step.terminated, step.truncated
            if progress is not None:
                progress(ep)

    run_lockstep(thunk, seeds, act, on_step, options.batch_size)
    return episodes


def rollout_arrays(episodes: Sequence[Episode], options: RecordOptions, policy_label: str) -> dict[str, np.ndarray]:
    """The .npz contents of a recording (module docstring)."""
    lengths = np.array([ep.length for ep in episodes], np.int64)
    terminated = np.concatenate([np.arange(ep.length) == ep.length - 1 if ep.terminated else np.zeros(ep.length, bool)
                                 for ep in episodes])
    truncated = np.concatenate([np.arange(ep.length) == ep.length - 1 if ep.truncated else np.zeros(ep.length, bool)
                                for ep in episodes])
    return {
        "observations": np.concatenate([np.stack(ep.obs) for ep in episodes]).astype(np.float32),
        "actions": np.concatenate([np.stack(ep.actions) for ep in episodes]).astype(np.float32),
        "executed_actions": np.concatenate([np.stack(ep.executed) for ep in episodes]).astype(np.float32),
        "rewards": np.concatenate([np.asarray(ep.rewards, np.float32) for ep in episodes]),
        "next_observations": np.concatenate([np.stack(ep.next_obs) for ep in episodes]).astype(np.float32),
        "terminated": terminated,
        "truncated": truncated,
        "task_one_hot": np.concatenate([np.tile(get_task(ep.task).one_hot, (ep.length, 1)) for ep in episodes]),
        "episode_index": np.repeat(np.arange(len(episodes)), lengths),
        "episode_tasks": np.array([ep.task for ep in episodes], dtype=str),
        "episode_seeds": np.array([ep.seed for ep in episodes], np.int64),
        "episode_lengths": lengths,
        "episode_returns": np.array([ep.episode_return for ep in episodes], np.float64),
        "episode_terminated": np.array([ep.terminated for ep in episodes], bool),
        "action_mode": np.array(options.action_mode),
        "action_repeat": np.int64(options.action_repeat),
        "pd_scale": np.float64(options.pd_scale),
        "reward_profile": np.array(options.reward_profile),
        "noise": np.float64(options.noise),
        "policy": np.array(policy_label),
        **({} if options.command is None else {"command": np.array(json.dumps(dataclasses.asdict(options.command)))}),
    }
