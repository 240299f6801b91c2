"""Speed of the fast twin (envs/fastsim.py) against sai_mujoco's own env, in the same run on this machine.

    python bench/sim_speed.py                        # all three measurements
    python bench/sim_speed.py --only torque --repeats 5

1. torque: env-steps/s of the bare official env (gym.make) and the bare twin, one core, per task, zero
   torques (the robot falls after ~280 steps and the episode resets, reset cost included on both sides);
   `--actions stand` replays the stand controller's torques instead (the robot stays up).
2. pd: decisions/s of the pd action mode with action repeat 10 through make_env (official: PDAction +
   ActionRepeat; fast: the fused loop), the stand controller acting, per task.
3. workers: env-steps/s (summed over envs) of make_vec_env with 8 fast envs in one process vs sharded over
   2 processes (this one steps the first shard, one worker process the other): torque mode at 500 Hz (a round
   trip per physics step) and pd mode with action repeat 10 (decisions/s, ten physics steps per round trip),
   each with random actions (episodes of ~40 decisions: frequent ~2-3 ms resets, each in one shard while the
   other waits) and with the stand controller acting (no resets: stepping alone); `--worker-actions` picks one.
Each pair is timed `--repeats` times taking turns (the machine's speed drifts); the median ratio and the
range are printed. A measurement is CPU-bound: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`

from bc.stand import StandController  # noqa: E402
from envs.factory import make_env, make_vec_env  # noqa: E402
from envs.fastsim import make_fast_env  # noqa: E402
from envs.preprocess import preprocess_step  # noqa: E402
from envs.tasks import TASK_NAMES, get_task  # noqa: E402

Timed = Callable[[], float]
"""Runs one block and returns its rate (steps or decisions per second)."""


def _turns(name: str, reference: Timed, candidate: Timed, repeats: int, unit: str) -> float:
    """Alternate the two sides `repeats` times after a burn-in; print and return the median ratio."""
    reference(), candidate()
    ref_rates, cand_rates, ratios = [], [], []
    for _ in range(repeats):
        ref_rates.append(reference())
        cand_rates.append(candidate())
        ratios.append(cand_rates[-1] / ref_rates[-1])
    median = statistics.median(ratios)
    print(f"{name:50s} {statistics.median(ref_rates):9.0f} -> {statistics.median(cand_rates):9.0f} {unit}"
          f"   x{median:.2f} (runs {min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    return median


def _torque_block(env, actions: np.ndarray) -> Timed:
    def run() -> float:
        env.reset(seed=0)
        start = time.perf_counter()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset(seed=0)
        return len(actions) / (time.perf_counter() - start)

    return run


def _stand_torques(task: str, steps: int) -> np.ndarray:
    """The stand controller's torques along one official episode (replayed open loop by both sides)."""
    import gymnasium as gym

    spec = get_task(task)
    env = gym.make(spec.env_id)
    stand = StandController()
    obs, info = env.reset(seed=0)
    out = []
    for _ in range(steps):
        action = (stand(preprocess_step(obs, info, spec.one_hot)) * env.action_space.high).astype(np.float32)
        out.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            obs, info = env.reset(seed=0)
    env.close()
    return np.array(out)


def bench_torque(steps: int, repeats: int, source: str) -> list[float]:
    import gymnasium as gym

    ratios = []
    for task in TASK_NAMES:
        actions = _stand_torques(task, steps) if source == "stand" else np.zeros((steps, 12), np.float32)
        official, fast = gym.make(get_task(task).env_id), make_fast_env(task)
        ratios.append(_turns(f"torque {task}", _torque_block(official, actions), _torque_block(fast, actions),
                             repeats, "steps/s"))
        official.close()
        fast.close()
    return ratios


def _pd_block(env, decisions: int) -> Timed:
    stand = StandController(action_mode="pd")

    def run() -> float:
        obs, _ = env.reset(seed=0)
        start = time.perf_counter()
        for _ in range(decisions):
            obs, _, terminated, truncated, _ = env.step(stand(obs))
            if terminated or truncated:
                obs, _ = env.reset(seed=0)
        return decisions / (time.perf_counter() - start)

    return run


def bench_pd(decisions: int, repeats: int) -> list[float]:
    ratios = []
    for task in TASK_NAMES:
        official = make_env(task, action_mode="pd", action_repeat=10)()
        fast = make_env(task, action_mode="pd", action_repeat=10, sim="fast")()
        ratios.append(_turns(f"pd repeat 10 {task}", _pd_block(official, decisions), _pd_block(fast, decisions),
                             repeats, "decisions/s"))
        official.close()
        fast.close()
    return ratios


def _vector_block(vec, steps: int, source: str, action_mode: str) -> Timed:
    """`steps` vector steps; `source` random: uniform actions (falls every ~40 decisions, so resets are frequent
    and land in one shard at a time), stand: the stand controller acting on the vector's observations (the
    robots stay up, so the block times stepping alone)."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, vec.num_envs, 12)).astype(np.float32)
    stand = StandController(action_mode=action_mode) if source == "stand" else None

    def run() -> float:
        obs, _ = vec.reset(seed=0)
        start = time.perf_counter()
        for batch in actions:
            obs = vec.step(batch if stand is None else stand(obs))[0]
        return steps * vec.num_envs / (time.perf_counter() - start)

    return run


def bench_workers(steps: int, repeats: int, n_envs: int, sources: list[str]) -> list[float]:
    """1 vs 2 stepping processes at 500 Hz torque (one env step per round trip) and in the pd mode with action
    repeat 10 (ten physics steps per round trip, as training with --action-repeat 10 steps them), per action
    source."""
    tasks = [TASK_NAMES[i % 3] for i in range(n_envs)]
    ratios = []
    for mode, repeat, unit, block in (("torque", 1, "steps/s", steps), ("pd", 10, "decisions/s", max(steps // 5, 1))):
        one = make_vec_env(tasks, sim="fast", action_mode=mode, action_repeat=repeat)
        two = make_vec_env(tasks, sim="fast", action_mode=mode, action_repeat=repeat, workers=2)
        try:
            for source in sources:
                ratios.append(_turns(f"{n_envs} fast envs {mode} repeat {repeat}, {source}: 1 -> 2 processes",
                                     _vector_block(one, block, source, mode), _vector_block(two, block, source, mode),
                                     repeats, unit))
        finally:
            one.close()
            two.close()
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["torque", "pd", "workers"], help="run one measurement only")
    parser.add_argument("--steps", type=int, default=3000, help="env steps per torque block (default 3000)")
    parser.add_argument("--decisions", type=int, default=300, help="decisions per pd block (default 300)")
    parser.add_argument("--vector-steps", type=int, default=400,
                        help="vector steps per workers block (default 400; a fifth of that in pd mode)")
    parser.add_argument("--n-envs", type=int, default=8, help="envs in the workers measurement (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per side (default 3)")
    parser.add_argument("--actions", choices=["zero", "stand"], default="zero",
                        help="torque measurement: zero torques (default) or the stand controller's")
    parser.add_argument("--worker-actions", choices=["random", "stand", "both"], default="both",
                        help="workers measurement: uniform random actions, the stand controller's, or both (default)")
    args = parser.parse_args(argv)
    for flag in ("steps", "decisions", "vector_steps", "n_envs", "repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.n_envs < 2:
        parser.error("--n-envs must be >= 2 to shard over 2 workers")
    print("official -> fast (rates are medians over the timed blocks; x = median ratio)")
    if args.only in (None, "torque"):
        bench_torque(args.steps, args.repeats, args.actions)
    if args.only in (None, "pd"):
        bench_pd(args.decisions, args.repeats)
    if args.only in (None, "workers"):
        bench_workers(args.vector_steps, args.repeats, args.n_envs,
                      ["random", "stand"] if args.worker_actions == "both" else [args.worker_actions])
    return 0


if __name__ == "__main__":
    sys.exit(main())
