"""Vector envs for the soccer tasks: N envs stepped in one process, or sharded over worker processes.

Both keep gymnasium's SAME_STEP autoreset contract exactly as `gym.vector.SyncVectorEnv` does it: an env
whose episode ends is reset in the same `step`, the returned observation is the new episode's first one,
and info["final_obs"] / info["final_info"] (masks "_final_obs" / "_final_info") hold what the ended episode
returned. One function, `step_envs`, does the stepping for both forms, so they cannot drift apart.

* `BatchVectorEnv`: one process; writes every env's outputs into preallocated arrays (no per-step copies
  of the batch, no gymnasium space iteration).
* `ShardedVectorEnv`: the envs split into contiguous shards over `workers` processes (one per core is the
  point): the calling process steps the first shard itself while one worker process per other shard steps
  its own. A sleeping process takes a few hundred microseconds to hand a step over and back on a VM, as long
  as eight envs take to step; with the first shard at home that wait overlaps the caller's own stepping
  instead of adding to it (docs/fast_simulation.md has the figures). Actions, observations, rewards and flags
  travel through shared memory; the pipe carries one short message per worker per step and the per-env info
  dicts (empty under LeanInfo except at an episode's end). The env thunks go to the workers as process
  arguments, pickled by multiprocessing's standard pickler: they must be module-level callables or picklable
  objects such as envs.factory.EnvThunk (no closures, no code carried in the bytes).
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import gymnasium as gym
import numpy as np

EnvInfos = list[tuple[int, dict]]
"""(env index, info dict) pairs in the order gymnasium's SyncVectorEnv adds them."""


def step_envs(envs: Sequence[gym.Env], actions: np.ndarray, obs: np.ndarray, rewards: np.ndarray,
              terminated: np.ndarray, truncated: np.ndarray, offset: int = 0) -> EnvInfos:
    """Step every env with its row of `actions`, SAME_STEP autoreset, outputs written into the arrays.

    Returns the info dicts to aggregate: for an ended episode first {"final_obs", "final_info"}, then the
    reset's info, exactly as SyncVectorEnv adds them; `offset` is added to the env indices.
    """
    infos: EnvInfos = []
    for i, env in enumerate(envs):
        env_obs, reward, term, trunc, info = env.step(actions[i])
        rewards[i], terminated[i], truncated[i] = reward, term, trunc
        if term or trunc:
            infos.append((offset + i, {"final_obs": env_obs, "final_info": info}))
            env_obs, info = env.reset()
        obs[i] = env_obs
        if info:
            infos.append((offset + i, info))
    return infos


def reset_envs(envs: Sequence[gym.Env], seeds: Sequence[int | None], obs: np.ndarray,
               options: dict | None = None, offset: int = 0) -> EnvInfos:
    """Reset every env (env i with seeds[i]) into `obs`; returns the non-empty reset infos."""
    infos: EnvInfos = []
    for i, (env, seed) in enumerate(zip(envs, seeds, strict=True)):
        obs[i], info = env.reset(seed=seed, options=options)
        if info:
            infos.append((offset + i, info))
    return infos


def _seed_list(seed: int | Sequence[int] | None, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    if isinstance(seed, int):
        return [seed + i for i in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"need {n} seeds, got {len(seeds)}")
    return seeds


class _Batched(gym.vector.VectorEnv):
    """Spaces, output arrays and info aggregation shared by both vector forms."""

    def _setup(self, single_obs: gym.spaces.Box, single_action: gym.spaces.Box, n: int,
               metadata: dict | None) -> None:
        self.num_envs = n
        self.single_observation_space = single_obs
        self.single_action_space = single_action
        self.observation_space = gym.vector.utils.batch_space(single_obs, n)
        self.action_space = gym.vector.utils.batch_space(single_action, n)
        self.metadata = {**(metadata or {}), "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def _aggregate(self, env_infos: EnvInfos) -> dict[str, Any]:
        infos: dict[str, Any] = {}
        for index, info in env_infos:
            infos = self._add_info(infos, info, index)
        return infos

    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        expected = (self.num_envs, *self.single_action_space.shape)
        if actions.shape != expected:
            raise ValueError(f"actions of shape {actions.shape}, need {expected}")
        return actions


class BatchVectorEnv(_Batched):
    """N envs in this process with SAME_STEP autoreset (module docstring)."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]]) -> None:
        if not env_fns:
            raise ValueError("a vector env needs at least one env")
        self.envs = [fn() for fn in env_fns]
        first = self.envs[0]
        self._setup(first.observation_space, first.action_space, len(self.envs), first.metadata)
        n, shape = self.num_envs, first.observation_space.shape
        self._obs = np.zeros((n, *shape), first.observation_space.dtype)
        self._rewards = np.zeros(n)
        self._terminated = np.zeros(n, dtype=bool)
        self._truncated = np.zeros(n, dtype=bool)

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict | None = None) -> tuple[np.ndarray, dict]:
        infos = reset_envs(self.envs, _seed_list(seed, self.num_envs), self._obs, options)
        return self._obs.copy(), self._aggregate(infos)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        infos = step_envs(self.envs, self._check_actions(actions), self._obs, self._rewards, self._terminated,
                          self._truncated)
        return (self._obs.copy(), self._rewards.copy(), self._terminated.copy(), self._truncated.copy(),
                self._aggregate(infos))

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()


class _Shared:
    """The batch arrays in one shared-memory block: actions, obs, rewards, terminated, truncated."""

    def __init__(self, n: int, obs_shape: tuple[int, ...], obs_dtype: np.dtype, act_shape: tuple[int, ...],
                 act_dtype: np.dtype, name: str | None = None) -> None:
        specs = [("actions", (n, *act_shape), np.dtype(act_dtype)), ("obs", (n, *obs_shape), np.dtype(obs_dtype)),
                 ("rewards", (n,), np.dtype(np.float64)), ("terminated", (n,), np.dtype(bool)),
                 ("truncated", (n,), np.dtype(bool))]
        offsets, size = [], 0
        for _, shape, dtype in specs:
            size = -(-size // 8) * 8
            offsets.append(size)
            size += int(np.prod(shape)) * dtype.itemsize
        self.memory = SharedMemory(name=name, create=name is None, size=max(size, 1))
        self.arrays = {key: np.ndarray(shape, dtype, buffer=self.memory.buf, offset=offset)
                       for (key, shape, dtype), offset in zip(specs, offsets, strict=True)}
        self.layout = (n, obs_shape, str(np.dtype(obs_dtype)), act_shape, str(np.dtype(act_dtype)))


def _worker(pipe: Any, thunks: list[Callable[[], gym.Env]], start: int, stop: int, memory_name: str,
            layout: tuple) -> None:
    """A shard's process: build its envs, then serve reset / step / close over the pipe."""
    envs: list[gym.Env] = []
    shared = None
    try:
        n, obs_shape, obs_dtype, act_shape, act_dtype = layout
        shared = _Shared(n, tuple(obs_shape), np.dtype(obs_dtype), tuple(act_shape), np.dtype(act_dtype),
                         name=memory_name)
        a = shared.arrays
        envs = [fn() for fn in thunks]
        pipe.send(("ready", None))
        while True:
            command, payload = pipe.recv()
            if command == "step":
                infos = step_envs(envs, a["actions"][start:stop], a["obs"][start:stop], a["rewards"][start:stop],
                                  a["terminated"][start:stop], a["truncated"][start:stop], offset=start)
                pipe.send(("ok", infos))
            elif command == "reset":
                seeds, options = payload
                pipe.send(("ok", reset_envs(envs, seeds, a["obs"][start:stop], options, offset=start)))
            elif command == "close":
                pipe.send(("ok", None))
                break
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # sent to the parent, which raises it there as one line
        try:
            pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))
        except (BrokenPipeError, OSError):
            pass
    finally:
        for env in envs:
            env.close()
        if shared is not None:
            shared.memory.close()


class ShardedVectorEnv(_Batched):
    """N envs split over `workers` processes, this one included (module docstring); env order and seeding as in
    BatchVectorEnv."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], workers: int, context: str = "spawn") -> None:
        if not env_fns:
            raise ValueError("a vector env needs at least one env")
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= len(env_fns):
            raise ValueError(f"workers must be an integer in [1, n_envs={len(env_fns)}], got {workers!r}")
        n = len(env_fns)
        bounds = np.linspace(0, n, workers + 1).round().astype(int)
        self._shards = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self._pipes, self._processes, self._own = [], [], []
        try:
            self._own = [fn() for fn in env_fns[:self._shards[0][1]]]
            first = self._own[0]
            single_obs, single_action = first.observation_space, first.action_space
            self._setup(single_obs, single_action, n, first.metadata)
            self._shared = _Shared(n, single_obs.shape, single_obs.dtype, single_action.shape, single_action.dtype)
            ctx = mp.get_context(context)
            for start, stop in self._shards[1:]:
                parent, child = ctx.Pipe()
                process = ctx.Process(target=_worker, daemon=True, args=(child, list(env_fns[start:stop]), start,
                                                                         stop, self._shared.memory.name,
                                                                         self._shared.layout))
                try:
                    process.start()
                except (pickle.PicklingError, AttributeError, TypeError) as exc:
                    raise ValueError(f"the env thunks of a sharded vector env must be picklable (module-level "
                                     f"callables, not closures): {exc}") from None
                child.close()
                self._pipes.append(parent)
                self._processes.append(process)
            self._gather()
        except BaseException:
            self.close()
            raise

    def _gather(self) -> EnvInfos:
        """Wait for every worker's answer; a worker's error is re-raised here as a RuntimeError."""
        infos: EnvInfos = []
        errors = []
        for pipe in self._pipes:
            try:
                status, payload = pipe.recv()
            except EOFError:
                status, payload = "error", "the worker process died"
            if status == "error":
                errors.append(payload)
            elif payload:
                infos.extend(payload)
        if errors:
            raise RuntimeError(f"vector env worker failed: {errors[0].splitlines()[0]}")
        return infos

    def _own_then_gather(self, work: Callable[[], EnvInfos]) -> EnvInfos:
        """Run this process's shard while the workers run theirs, then collect theirs (always, so the pipes stay
        in step even when the own shard raises); infos in env order."""
        try:
            own = work()
        finally:
            others = self._gather()
        return own + others

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict | None = None) -> tuple[np.ndarray, dict]:
        seeds = _seed_list(seed, self.num_envs)
        for pipe, (start, stop) in zip(self._pipes, self._shards[1:], strict=True):
            pipe.send(("reset", (seeds[start:stop], options)))
        stop = self._shards[0][1]
        obs = self._shared.arrays["obs"]
        infos = self._own_then_gather(lambda: reset_envs(self._own, seeds[:stop], obs[:stop], options))
        return obs.copy(), self._aggregate(infos)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        a = self._shared.arrays
        a["actions"][:] = self._check_actions(actions)
        for pipe in self._pipes:
            pipe.send(("step", None))
        stop = self._shards[0][1]
        infos = self._own_then_gather(lambda: step_envs(self._own, a["actions"][:stop], a["obs"][:stop],
                                                        a["rewards"][:stop], a["terminated"][:stop],
                                                        a["truncated"][:stop]))
        return (a["obs"].copy(), a["rewards"].copy(), a["terminated"].copy(), a["truncated"].copy(),
                self._aggregate(infos))

    def close_extras(self, **kwargs: Any) -> None:
        for pipe in getattr(self, "_pipes", []):
            try:
                pipe.send(("close", None))
                pipe.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        for process in getattr(self, "_processes", []):
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        for env in getattr(self, "_own", []):
            env.close()
        self._own = []
        shared = getattr(self, "_shared", None)
        if shared is not None:
            shared.memory.close()
            shared.memory.unlink()
            self._shared = None
