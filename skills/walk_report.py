"""Measure a walk parameter file: episodes per command on the fast twin, falls and achieved speeds.

    python -m skills.walk_report                                  # the shipped envs/walk_params.json
    python -m skills.walk_report --params runs/tune/walk_params.json --episodes 20 --json walk.json

Each command of COMMANDS (forward 0.2 and 0.4 m/s, turning at +-0.5 rad/s, standing still) walks
`--episodes` episodes of `--seconds` from the KickToTarget task's resets (seed 0, 1, ...: the robot starts at
a random place on the field facing its centre), the ball moved aside (skills/walk_eval.py). Printed per
command: episodes without a fall, the mean and range of the forward speed, sideways speed and yaw rate after
the 2 s settle time, and whether the mean of the commanded component is within 25% of the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from envs.fastsim import make_fast_env
from envs.walk import load_walk_params
from skills.walk_eval import walk_episode

COMMANDS = ((0.2, 0.0, 0.0), (0.4, 0.0, 0.0), (0.0, 0.0, 0.5), (0.0, 0.0, -0.5), (0.0, 0.0, 0.0))
TOLERANCE = 0.25
"""The mean commanded speed must be within this fraction of the command."""


def report(params_path: str | None, episodes: int, seconds: float, task: str) -> list[dict]:
    """One row per command (module docstring)."""
    params, _ = load_walk_params(params_path)
    env = make_fast_env(task)
    rows = []
    try:
        for command in COMMANDS:
            results = [walk_episode(params, command, env=env, seed=seed, seconds=seconds) for seed in range(episodes)]
            vx = np.array([r.vx for r in results])
            vy = np.array([r.vy for r in results])
            yaw = np.array([r.yaw_rate for r in results])
            axis = 2 if command[2] != 0 else 0
            achieved = float((yaw if axis == 2 else vx).mean())
            within = (abs(achieved - command[axis]) <= TOLERANCE * abs(command[axis]) if command[axis] != 0
                      else bool(np.all(np.abs(vx) < 0.05) and np.all(np.abs(yaw) < 0.1)))
            rows.append({"command": list(command), "episodes": episodes, "upright": sum(not r.fell for r in results),
                         "vx_mean": float(vx.mean()), "vx_min": float(vx.min()), "vx_max": float(vx.max()),
                         "vy_mean": float(vy.mean()), "yaw_mean": float(yaw.mean()), "yaw_min": float(yaw.min()),
                         "yaw_max": float(yaw.max()), "within_tolerance": bool(within)})
    finally:
        env.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skills.walk_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", help="walk parameter file (default: the shipped envs/walk_params.json)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per command (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="episode length (s, default 10)")
    parser.add_argument("--task", default="kick_to_target", help="task whose resets start the episodes")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if args.episodes < 1 or not 3.0 <= args.seconds <= 10.0:
        print("error: --episodes must be >= 1 and --seconds in [3, 10]", file=sys.stderr)
        return 2
    try:
        rows = report(args.params, args.episodes, args.seconds, args.task)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'command (vx, vy, yaw)':24s} {'upright':>8s} {'vx mean [min, max]':>24s} {'vy':>6s} "
          f"{'yaw rate mean [min, max]':>26s}  within 25%")
    for r in rows:
        print(f"{str(tuple(r['command'])):24s} {r['upright']:>4d}/{r['episodes']:<3d} "
              f"{r['vx_mean']:+.3f} [{r['vx_min']:+.3f}, {r['vx_max']:+.3f}] {r['vy_mean']:+.3f} "
              f"{r['yaw_mean']:+.3f} [{r['yaw_min']:+.3f}, {r['yaw_max']:+.3f}]    "
              f"{'yes' if r['within_tolerance'] else 'no'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
