"""Env-steps per second through our env layer versus bare `gym.make` stepping, in one process.

    python bench/env_overhead.py --task goalie_penalty_kick --steps 6000 --repeats 3

Every configuration steps the same uniform random actions (the bare env gets the same torques the torque
mode maps them to) and resets when an episode ends (~180 steps). Configurations:
  bare             gym.make(env_id), step + reset by hand
  make_env         one wrapped env (89-dim obs, competition reward, full info)
  vec n=1 lean     make_vec_env, SyncVectorEnv, lean info (the training default)
  vec n=1 full     make_vec_env with every info key aggregated by gymnasium
  vec n=2 lean     two envs in one SyncVectorEnv (steps counted per env)
Each is timed `repeats` times, interleaved, after a burn-in; the best run counts (the machine is shared).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`

from envs.factory import make_env, make_vec_env  # noqa: E402
from envs.tasks import TASK_NAMES, get_task  # noqa: E402
from envs.wrappers import T1_TORQUE_LIMIT  # noqa: E402

BURN_IN = 300


Run = Callable[[np.ndarray], float]
"""Steps the given (steps, 12) actions from a seeded reset; returns env-steps per second."""


def _single(env: gym.Env, to_env_actions: Callable[[np.ndarray], np.ndarray]) -> Run:
    """Step one env by hand, resetting when an episode ends."""

    def run(actions: np.ndarray) -> float:
        env_actions = to_env_actions(actions)
        env.reset(seed=0)
        start = time.perf_counter()
        for action in env_actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return len(env_actions) / (time.perf_counter() - start)

    return run


def _vector(task: str, n_envs: int, lean_info: bool) -> Run:
    vec = make_vec_env([task] * n_envs, seed=0, lean_info=lean_info)

    def run(actions: np.ndarray) -> float:
        batched = np.stack([actions] * n_envs, axis=1)[: len(actions) // n_envs]
        vec.reset(seed=0)
        start = time.perf_counter()
        for action in batched:
            vec.step(action)
        return len(batched) * n_envs / (time.perf_counter() - start)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASK_NAMES, default="goalie_penalty_kick")
    parser.add_argument("--steps", type=int, default=6000, help="env steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (best counts)")
    args = parser.parse_args()

    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (args.steps, 12)).astype(np.float32)
    configs = {
        # the bare env gets the torques the torque mode maps the actions to
        "bare": _single(gym.make(get_task(args.task).env_id), lambda a: (a * T1_TORQUE_LIMIT).astype(np.float32)),
        "make_env": _single(make_env(args.task)(), lambda a: a),
        "vec n=1 lean": _vector(args.task, 1, lean_info=True),
        "vec n=1 full": _vector(args.task, 1, lean_info=False),
        "vec n=2 lean": _vector(args.task, 2, lean_info=True),
    }
    for run in configs.values():
        run(actions[:BURN_IN])
    best = dict.fromkeys(configs, 0.0)
    for _ in range(args.repeats):
        for name, run in configs.items():
            best[name] = max(best[name], run(actions))
    print(f"task {args.task}, {args.steps} steps per run, best of {args.repeats}")
    print(f"{'config':<14}{'steps/s':>10}{'overhead vs bare':>18}")
    for name, sps in best.items():
        print(f"{name:<14}{sps:>10.0f}{best['bare'] / sps - 1.0:>+17.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
