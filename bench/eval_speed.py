"""Wall-clock of one training-time evaluation (what train.py runs every --eval-freq) on sai_mujoco's env vs our twin.

    python bench/eval_speed.py                 # the stand controller, 3 tasks x seeds 0-3 x 2 episodes
    python bench/eval_speed.py --episodes 1 --tasks goalie_penalty_kick

The stand controller keeps every episode at its full 5000 steps (the worst case of an evaluation), through the
same harness train.py evaluates with (scoring.harness.evaluate, lock-step batches of 8). The two sides take
turns `--repeats` times; both give the same scores (checked). CPU-bound: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`

from bc.stand import StandController  # noqa: E402
from envs.tasks import parse_task_names  # noqa: E402
from scoring.harness import evaluate  # noqa: E402


def timed(sim: str, tasks: list[str], episodes: int) -> tuple[float, float]:
    """(seconds, C_overall) of one evaluation on `sim`."""
    start = time.perf_counter()
    result = evaluate(StandController(), tasks, episodes, [0, 1, 2, 3], sim=sim)
    return time.perf_counter() - start, result.c_overall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="all", help="comma-separated task names, or all (default)")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per eval seed per task (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="evaluations per side, taking turns (default 1)")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.repeats < 1:
        parser.error("--episodes and --repeats must be >= 1")
    try:
        tasks = parse_task_names(args.tasks)
    except ValueError as exc:
        parser.error(str(exc))
    seconds: dict[str, list[float]] = {"official": [], "fast": []}
    for _ in range(args.repeats):
        scores = {}
        for sim in ("official", "fast"):
            took, scores[sim] = timed(sim, tasks, args.episodes)
            seconds[sim].append(took)
            print(f"{sim:8s} {took:7.1f} s  C_overall {scores[sim]:+.3f}", flush=True)
        if abs(scores["official"] - scores["fast"]) > 1e-4:
            print(f"error: the two simulators scored {scores['official']} and {scores['fast']}", file=sys.stderr)
            return 1
    official, fast = statistics.median(seconds["official"]), statistics.median(seconds["fast"])
    print(f"evaluation of {len(tasks)} task(s) x 4 seeds x {args.episodes}: official {official:.1f} s -> fast "
          f"{fast:.1f} s   x{official / fast:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
