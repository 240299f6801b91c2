"""The training loop: vector-env stepping, replay or rollout collection, updates, evaluation, checkpoints.

The runner knows two loop shapes (off-policy: replay buffer and `update(batch)`; on-policy: rollout
buffer and `update(rollout)`) and no algorithm. It needs a gymnasium VectorEnv with Box spaces and
SAME_STEP autoreset: when an episode ends, the step returns the reset observation and the true final
observation sits in info["final_obs"]. Off-policy, that final observation is stored as next_obs
(truncation bootstraps, termination does not); on-policy, a truncated step gets gamma * V(final obs)
added to its reward.

Schedules (evaluation, checkpoints, logging, unfreezing) count TIMESTEPS (transitions), not vector
steps (the seed pipeline's eval_freq counted vector steps: docs/seed_pipeline.md, fix 1). A final evaluation
and a final checkpoint always happen. Resuming restores the counters, so the random warm-up is never
run again with a trained policy. Host syncs per vector step: the actions to the env, and one blocking
host-to-device copy of each array the env returned (obs, rewards, next obs, terminated; PPO: obs, rewards,
episode ends, plus the bootstrap's on a truncation); per PPO update, GAE's copies (rlcore/buffers.py); the
conversion of accumulated metrics once per log interval. tests/test_rlcore_gpu.py counts them.

SIGINT (Ctrl-C) and SIGTERM during `train()` stop the run at a safe point: the handler only sets a flag,
which the loop reads once per vector step (a Python bool: no host sync); the runner then writes checkpoint.pt
at the current step (atomically) and raises `Interrupted`, which the CLI turns into "resume with ..." and exit
code 128 + signal (130, 143). An evaluation in progress finishes first; a second signal stops at once
(KeyboardInterrupt; the checkpoint being written, if any, is discarded and the previous one kept).
"""

from __future__ import annotations

import collections
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch

from rlcore import metrics
from rlcore.algos.protocol import Learner
from rlcore.buffers import ReplayBuffer, RolloutBuffer
from rlcore.checkpoint import save_checkpoint, set_rng_state
from rlcore.logger import RunLogger

EvalFn = Callable[[object, int], dict[str, float]]
"""evaluate(policy, timestep) -> scalars to log; receives the algorithm's DeployedPolicy."""

CheckpointHook = Callable[[Path], None]
"""Called after each checkpoint with its path (e.g. to export SB3 zips beside it)."""


class RunTracker(Protocol):
    """State a caller keeps across the run's evaluations (e.g. its best scores) that a resumed run must continue:
    saved in every checkpoint (plain types), given back on resume."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class Interrupted(Exception):
    """A run stopped by SIGINT / SIGTERM after writing its checkpoint."""

    def __init__(self, signum: int, timesteps: int, checkpoint: Path | None) -> None:
        super().__init__(f"{signal.Signals(signum).name} at timestep {timesteps}")
        self.signum, self.timesteps, self.checkpoint = signum, timesteps, checkpoint

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class _StopSignals:
    """While active: the first SIGINT / SIGTERM sets `received`; a second one raises KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        os.write(2, f"\n{signal.Signals(signum).name}: stopping at the next step to write a checkpoint "
                    "(send it again to stop at once)\n".encode())

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


@dataclass(frozen=True, kw_only=True, slots=True)
class RunConfig:
    """How long and how a run goes; schedules are in timesteps."""

    total_timesteps: int
    """Transitions to collect in this run (counted over all envs), including those of a resumed run."""
    seed: int = 0
    """Seed of the env resets, torch, numpy and the buffers."""
    eval_freq: int = 0
    """Timesteps between evaluations; 0 = only the final evaluation."""
    checkpoint_freq: int = 0
    """Timesteps between checkpoints besides those after each evaluation and at the end; 0 = none extra."""
    log_interval: int = 2000
    """Timesteps between progress lines and logged scalars."""
    save_replay: bool = False
    """Include the replay buffer in checkpoint.pt (large; makes resumes exact for off-policy algorithms)."""
    random_warmup: bool = True
    """Act uniformly at random for the first learning_starts timesteps (off for warm-started policies)."""

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "eval_freq", "checkpoint_freq"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.log_interval <= 0:
            raise ValueError(f"log_interval must be > 0, got {self.log_interval}")


def check_box_spaces(env: gym.vector.VectorEnv) -> tuple[int, np.ndarray, np.ndarray]:
    """(obs_dim, action_low, action_high) of a vector env with flat Box spaces; ValueError otherwise."""
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(obs_space, gym.spaces.Box) or not isinstance(act_space, gym.spaces.Box):
        raise ValueError(f"the engine needs Box observation and action spaces, got "
                         f"{type(obs_space).__name__} and {type(act_space).__name__}")
    if len(obs_space.shape) != 1 or len(act_space.shape) != 1:
        raise ValueError(f"the engine needs flat (1-D) Box spaces, got {obs_space.shape} and {act_space.shape}")
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise ValueError("the action space must have finite bounds")
    return obs_space.shape[0], act_space.low.astype(np.float32), act_space.high.astype(np.float32)


class Runner:
    """Runs one algorithm on one vector env until total_timesteps, with evaluation and checkpoints."""

    def __init__(self, algo: Learner, env: gym.vector.VectorEnv, run: RunConfig, *, save_dir: Path | None = None,
                 evaluate: EvalFn | None = None, logger: RunLogger | None = None, metadata: dict | None = None,
                 on_checkpoint: CheckpointHook | None = None, resume: dict | None = None,
                 tracker: RunTracker | None = None) -> None:
        self.algo = algo
        self.env = env
        self.run = run
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.evaluate = evaluate
        self.logger = logger or RunLogger(None, verbose=False)
        self.metadata = metadata or {}
        self.on_checkpoint = on_checkpoint
        self.tracker = tracker
        self.device = algo.device
        self.n_envs = env.num_envs
        self.obs_dim, self.action_low, self.action_high = check_box_spaces(env)
        self.act_dim = len(self.action_low)
        self.timesteps = 0
        self.episodes = 0
        self.last_eval: dict[str, float] = {}
        self.episode_returns: collections.deque[float] = collections.deque(maxlen=100)
        self.episode_lengths: collections.deque[int] = collections.deque(maxlen=100)
        self.replay: ReplayBuffer | None = None
        self.rollout: RolloutBuffer | None = None
        self._stop = _StopSignals()
        if algo.on_policy:
            self.rollout = RolloutBuffer(algo.cfg.n_steps, self.n_envs, self.obs_dim, self.act_dim, self.device,
                                         seed=run.seed)
        else:
            buf = algo.cfg.buffer
            demo_capacity = round(buf.buffer_size * buf.demo_fraction)
            self.replay = ReplayBuffer(self.obs_dim, self.act_dim, buf.buffer_size - demo_capacity, self.device,
                                       demo_capacity=demo_capacity, demo_fraction=buf.demo_fraction, seed=run.seed)
        if resume is not None:
            self._restore(resume)

    # ------------------------------------------------------------------ public
    def train(self) -> dict[str, float]:
        """Run to total_timesteps; returns the final evaluation's scalars (empty without an evaluator).

        The caller seeds torch/numpy (a resumed run restores their states instead); env resets are
        seeded with seed + timesteps so a resumed run does not replay the first episodes.
        """
        obs, _ = self.env.reset(seed=self.run.seed + self.timesteps)
        self._start_time = time.time()
        self._start_steps = self.timesteps
        self._next_log = self._next_multiple(self.run.log_interval)
        self._next_eval = self._next_multiple(self.run.eval_freq) if self.run.eval_freq else math.inf
        self._next_ckpt = self._next_multiple(self.run.checkpoint_freq) if self.run.checkpoint_freq else math.inf
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._last_logged = -1
        self._ep_return = np.zeros(self.n_envs, np.float64)
        self._ep_length = np.zeros(self.n_envs, np.int64)
        if self.algo.freeze is not None and self.algo.freeze.frozen:
            self.logger.message(self.algo.freeze.describe())
        loop = self._train_on_policy if self.algo.on_policy else self._train_off_policy
        with self._stop:
            loop(obs)
            if self.timesteps != self._last_logged:
                self._log()
            if self._stop.received is not None:
                path = self.checkpoint()
                self.logger.close()
                raise Interrupted(self._stop.received, self.timesteps, path)
            final = self._evaluate() if self.evaluate is not None else {}
            self.checkpoint()
        self.logger.close()
        return final

    def checkpoint(self) -> Path | None:
        """Write save_dir/checkpoint.pt (atomically) and call the checkpoint hook."""
        if self.save_dir is None:
            return None
        path = self.save_dir / "checkpoint.pt"
        save_checkpoint(
            path, algo_name=self.algo.name, config=self.algo.cfg, algo_state=self.algo.state_dict(),
            obs_shape=(self.obs_dim,), action_low=self.action_low, action_high=self.action_high,
            runner_state=self._runner_state(), metadata=self.metadata,
            replay_state=self.replay.state_dict() if (self.replay is not None and self.run.save_replay) else None)
        if self.on_checkpoint is not None:
            self.on_checkpoint(path)
        return path

    # ------------------------------------------------------------------ loops
    def _train_off_policy(self, obs: np.ndarray) -> None:
        algo, replay, cfg = self.algo, self.replay, self.algo.cfg
        vec_step = 0
        while self.timesteps < self.run.total_timesteps and self._stop.received is None:
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            algo.normalizer.update(obs_t)
            if self.run.random_warmup and self.timesteps < cfg.buffer.learning_starts:
                actions = torch.rand((self.n_envs, self.act_dim), device=self.device) * 2.0 - 1.0
            else:
                actions = algo.explore(obs_t)
            next_obs, rewards, terminated, truncated, infos = self.env.step(self._env_actions(actions))
            replay.add(obs_t, actions, torch.as_tensor(rewards, dtype=torch.float32, device=self.device),
                       torch.as_tensor(_true_next_obs(next_obs, infos), device=self.device),
                       torch.as_tensor(terminated, dtype=torch.float32, device=self.device))
            self._track_episodes(rewards, terminated, truncated)
            obs = next_obs
            vec_step += 1
            self.timesteps += self.n_envs
            if (self.timesteps >= cfg.buffer.learning_starts and len(replay) >= cfg.buffer.batch_size
                    and vec_step % cfg.train_freq == 0):
                for _ in range(cfg.gradient_steps):
                    self._accumulate(algo.update(replay.sample(cfg.buffer.batch_size).normalized(algo.normalizer)))
            self._after_step()

    def _train_on_policy(self, obs: np.ndarray) -> None:
        algo, rollout, cfg = self.algo, self.rollout, self.algo.cfg
        while self.timesteps < self.run.total_timesteps and self._stop.received is None:
            rollout.reset()
            while not rollout.full:
                obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
                algo.normalizer.update(obs_t)
                actions = algo.explore(obs_t)
                next_obs, rewards, terminated, truncated, infos = self.env.step(
                    self._env_actions(actions.clamp(-1.0, 1.0)))
                rewards_t = torch.as_tensor(rewards, dtype=torch.float32, device=self.device)
                bootstrap = truncated & ~terminated
                if bootstrap.any():  # truncation is not termination: add gamma * V(final obs)
                    final = torch.as_tensor(_true_next_obs(next_obs, infos)[bootstrap], device=self.device)
                    rewards_t[torch.as_tensor(bootstrap, device=self.device)] += cfg.gamma * algo.value(final)
                episode_ends = torch.as_tensor(terminated | truncated, dtype=torch.float32, device=self.device)
                rollout.add(algo.normalizer(obs_t), actions, rewards_t, episode_ends)  # what the policy saw
                self._track_episodes(rewards, terminated, truncated)
                obs = next_obs
                self.timesteps += self.n_envs
                self._after_step(between_updates=False)
                if self._stop.received is not None:
                    return  # mid-rollout: the checkpoint has the counters; a resumed run starts a fresh rollout
            rollout.finish(algo.normalizer(torch.as_tensor(obs, dtype=torch.float32, device=self.device)))
            self._accumulate(algo.update(rollout))
            self._after_step()

    # ------------------------------------------------------------------ helpers
    def _env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """[-1, 1] actions to env units as numpy: the one host sync per vector step."""
        return self.algo.policy.to_env(actions).cpu().numpy()

    def _track_episodes(self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> None:
        self._ep_return += rewards
        self._ep_length += 1
        for i in np.flatnonzero(terminated | truncated):
            self.episode_returns.append(float(self._ep_return[i]))
            self.episode_lengths.append(int(self._ep_length[i]))
            self._ep_return[i] = 0.0
            self._ep_length[i] = 0
            self.episodes += 1

    def _accumulate(self, values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            self._sums[key] = self._sums[key] + value if key in self._sums else value.detach().clone()
            self._counts[key] = self._counts.get(key, 0) + 1

    def _after_step(self, between_updates: bool = True) -> None:
        """Schedules after a vector step. Inside a PPO rollout (between_updates False) evaluations and
        checkpoints wait for the rollout's update: a checkpoint taken there would resume without the rollout."""
        freeze = self.algo.freeze
        if freeze is not None:
            message = freeze.maybe_unfreeze(self.timesteps)
            if message:
                self.logger.message(message)
        if self.timesteps >= self._next_log:
            self._log()
            self._next_log = self._next_multiple(self.run.log_interval)
        if not between_updates:
            return
        if self.timesteps >= self._next_eval and self.timesteps < self.run.total_timesteps:
            self._evaluate()
            self.checkpoint()
            self._next_eval = self._next_multiple(self.run.eval_freq)
        if self.timesteps >= self._next_ckpt and self.timesteps < self.run.total_timesteps:
            self.checkpoint()
            self._next_ckpt = self._next_multiple(self.run.checkpoint_freq)

    def _next_multiple(self, every: int) -> int:
        return (self.timesteps // every + 1) * every

    def _log(self) -> None:
        values = {key: float(total) / self._counts[key] for key, total in self._sums.items()}  # one sync
        self._sums, self._counts = {}, {}
        elapsed = max(time.time() - self._start_time, 1e-9)
        fps = (self.timesteps - self._start_steps) / elapsed
        values[metrics.FPS] = fps
        values[metrics.TOTAL_TIMESTEPS] = self.timesteps
        values[metrics.N_UPDATES] = self.algo.n_updates
        if self.episode_returns:
            values[metrics.EP_REW_MEAN] = float(np.mean(self.episode_returns))
            values[metrics.EP_LEN_MEAN] = float(np.mean(self.episode_lengths))
        self.logger.record(values, self.timesteps)
        self.logger.progress(self._progress_line(fps, values))
        self._last_logged = self.timesteps

    def _progress_line(self, fps: float, values: dict[str, float]) -> str:
        total = self.run.total_timesteps
        remaining = max(total - self.timesteps, 0) / fps if fps > 0 else math.inf
        eta = time.strftime("%H:%M:%S", time.gmtime(remaining)) if math.isfinite(remaining) else "--:--:--"
        parts = [f"[{self.timesteps:>{len(str(total))}}/{total} {100 * self.timesteps / max(total, 1):3.0f}%]",
                 f"fps {fps:,.0f}", f"ETA {eta}"]
        if metrics.EP_REW_MEAN in values:
            parts.append(f"ep_rew {values[metrics.EP_REW_MEAN]:.2f}")
        if self.last_eval:
            key, value = next(iter(self.last_eval.items()))
            parts.append(f"last eval {key}={value:.3f}")
        return " | ".join(parts)

    def _evaluate(self) -> dict[str, float]:
        results = self.evaluate(self.algo.policy, self.timesteps)
        self.last_eval = dict(results)
        self.logger.record(results, self.timesteps)
        summary = ", ".join(f"{k}={v:.3f}" for k, v in list(metrics.headline(results).items())[:5])
        self.logger.message(f"[eval @ {self.timesteps}] {summary}")
        return results

    def _runner_state(self) -> dict:
        state = {"timesteps": self.timesteps, "episodes": self.episodes, "last_eval": self.last_eval,
                 "episode_returns": list(self.episode_returns), "episode_lengths": list(self.episode_lengths)}
        if self.rollout is not None:  # the minibatch order of the next rollouts (the replay saves its own)
            state["rollout_generator"] = self.rollout.generator.get_state()
        if self.tracker is not None:
            state["tracker"] = self.tracker.state_dict()
        return state

    def _restore(self, checkpoint: dict) -> None:
        """Continue from a checkpoint payload (rlcore.checkpoint.load_checkpoint)."""
        state = checkpoint["runner"]  # checked by load_checkpoint; a hand-made checkpoint may leave counters out
        self.timesteps = state.get("timesteps", 0)
        self.episodes = state.get("episodes", 0)
        self.last_eval = dict(state.get("last_eval", {}))
        self.episode_returns.extend(state.get("episode_returns", []))
        self.episode_lengths.extend(state.get("episode_lengths", []))
        if self.rollout is not None and state.get("rollout_generator") is not None:
            self.rollout.generator.set_state(state["rollout_generator"])
        if self.tracker is not None and state.get("tracker") is not None:
            self.tracker.load_state_dict(state["tracker"])  # ValueError when it is not the tracker's own
        if checkpoint.get("replay") is not None and self.replay is not None:
            self.replay.load_state_dict(checkpoint["replay"])
        set_rng_state(checkpoint["rng"])


def _true_next_obs(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """next_obs with the rows of ended episodes replaced by their final observation (SAME_STEP autoreset)."""
    mask = infos.get("_final_obs")
    if mask is None or not np.any(mask):
        return next_obs
    true_next = np.array(next_obs, dtype=np.float32, copy=True)
    for i in np.flatnonzero(mask):
        true_next[i] = infos["final_obs"][i]
    return true_next
