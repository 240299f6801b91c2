"""Tune the walk engine's parameters with CMA-ES on the fast simulator.

    python -m skills.tune_walk --generations 60 --out envs/walk_params.json
    python -m skills.tune_walk --resume runs/tune_walk/state.json --generations 30 --out envs/walk_params.json

Every candidate (a full parameter set: the start file with the `TUNED` entries changed) walks one episode
of `--seconds` per command of `COMMANDS` (forward at two speeds, turning both ways, standing, sideways, a
curve), per command of `STOPS` (walked for STOP_AT seconds, then a zero command: a stop from walking) and of
`DRIBBLES` (walked into the ball) on the fast twin (skills/walk_eval.py). Its cost, to minimise, per command:
* a fall: FALL_COST plus FALL_COST times the fraction of the episode it did not survive;
* velocity tracking: ((vx - cmd)/0.1)^2 + (vy/0.1)^2 + ((yaw rate - cmd)/0.25)^2 after the settle time
  (each term capped at TRACK_CAP, so a fall's tumble does not dominate);
* trunk attitude: TILT_COST times the mean squared tilt (rad^2).
The search runs in normalised coordinates (each parameter's offset from the start divided by its scale in
`TUNED`), populations are evaluated by `--workers` processes, each generation prints its best, mean, step
size and evaluations per second, the best parameters are written to `--out` (JSON: params, objective,
per-command results, commands, tuner options, the command line) after every improvement, and the search
state (mean, step size, covariance, best) to `--state`, from which `--resume` continues (the evolution paths
restart). Bad input is one `error:` line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.walk import WalkParams, load_walk_params
from skills.cmaes import UsageError, local_pool, search, tuner_run
from skills.walk_eval import WalkResult, walk_episode

COMMANDS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0), (0.2, 0.0, 0.0), (0.4, 0.0, 0.0), (0.0, 0.0, 0.5), (0.0, 0.0, -0.5), (0.0, 0.15, 0.0),
    (0.3, 0.0, 0.4))
"""The commands every candidate walks (vx m/s, vy m/s, yaw rate rad/s): the acceptance set (forward at two
speeds, turning both ways, standing) plus sideways and a curve, which the striker uses."""
STOPS: tuple[tuple[float, float, float], ...] = ((0.45, 0.0, 0.0), (0.3, 0.1, 0.0))
"""Commands walked for STOP_AT seconds and then dropped to zero: the striker stops from walking at its kick spot."""
STOP_AT = 5.0
DRIBBLES: tuple[tuple[float, float, float], ...] = ((0.45, 0.0, 0.0),)
"""Commands walked into the ball (left where the Goalie reset puts it, 2 m ahead): the striker walks through it."""
TUNED: dict[str, float] = {
    "frequency": 0.3, "step_gain": 0.3, "turn_gain": 0.3, "lift": 0.01, "lift_per_speed": 0.02, "sway": 0.015,
    "sway_phase": 0.08, "height": 0.015, "x_offset": 0.015, "width": 0.015, "trunk_pitch": 0.05,
    "pitch_per_vx": 0.1, "ankle_offset": 0.04, "ankle_pitch_p": 0.4, "ankle_pitch_d": 0.1, "hip_pitch_p": 0.3,
    "ankle_roll_p": 0.3, "ankle_roll_d": 0.05, "hip_roll_p": 0.3, "side_gain": 0.3, "place_pitch": 0.1,
    "place_pitch_d": 0.02, "place_roll": 0.1, "place_roll_d": 0.02,
}
"""The searched parameters and their scales (one unit of the normalised search space)."""
FALL_COST = 20.0
TRACK_CAP = 25.0
TILT_COST = 20.0
EPISODE_SECONDS = 10.0


def command_cost(result: WalkResult, seconds: float) -> float:
    """The cost of one walk episode of `seconds` (module docstring)."""
    vx_cmd, vy_cmd, yaw_cmd = result.command
    cost = 0.0
    if result.fell:
        cost += FALL_COST * (1.0 + max(0.0, 1.0 - result.seconds / seconds))
    for error, scale in ((result.vx - vx_cmd, 0.1), (result.vy - vy_cmd, 0.1), (result.yaw_rate - yaw_cmd, 0.25)):
        cost += min(TRACK_CAP, (error / scale) ** 2)
    return cost + TILT_COST * result.tilt


def to_params(start: WalkParams, z: np.ndarray) -> WalkParams:
    """The parameters at normalised point `z` (offsets from `start` in units of the TUNED scales)."""
    changes = {name: getattr(start, name) + float(v) * scale for (name, scale), v in zip(TUNED.items(), z, strict=True)}
    changes["frequency"] = max(0.3, changes["frequency"])
    changes["lift"] = max(0.0, changes["lift"])
    return start.replace(**changes)


_WORKER: dict[str, Any] = {}


def _init_worker(task: str, seconds: float, start: dict) -> None:
    from envs.fastsim import make_fast_env

    _WORKER.update(env=make_fast_env(task), seconds=seconds, start=WalkParams(**start))


def evaluate(z: np.ndarray) -> tuple[float, list[dict]]:
    """(cost, per-command results) of the candidate at normalised point `z`, in this worker's env."""
    env, seconds = _WORKER["env"], _WORKER["seconds"]
    params = to_params(_WORKER["start"], z)
    total, rows = 0.0, []
    episodes = ([(c, None, True) for c in COMMANDS] + [(c, STOP_AT, True) for c in STOPS]
                + [(c, None, False) for c in DRIBBLES])
    for command, stop_at, aside in episodes:
        result = walk_episode(params, command, env=env, seconds=seconds, stop_at=stop_at, ball_aside=aside)
        cost = command_cost(result, seconds)
        total += cost
        rows.append({**dataclasses.asdict(result), "stop_at": stop_at, "ball_aside": aside, "cost": cost})
    return total, rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m skills.tune_walk", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", help="walk parameter file to start from (default: the shipped one, "
                        "envs/walk_params.json)")
    parser.add_argument("--out", default="runs/tune_walk/walk_params.json", help="best parameters, written after "
                        "every improvement (default runs/tune_walk/walk_params.json)")
    parser.add_argument("--state", default=None, help="search state file (default: state.json beside --out)")
    parser.add_argument("--resume", metavar="STATE", help="continue from a state file of an earlier run")
    parser.add_argument("--generations", type=int, default=60, help="generations to run (default 60)")
    parser.add_argument("--popsize", type=int, default=16, help="candidates per generation (default 16)")
    parser.add_argument("--sigma", type=float, default=0.5, help="initial step size in scale units (default 0.5)")
    parser.add_argument("--seconds", type=float, default=EPISODE_SECONDS, help="episode length per command (s, "
                        f"default {EPISODE_SECONDS:g}: the tasks' whole episode)")
    parser.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)),
                        help="worker processes evaluating a population (default: the CPU count, at most 8)")
    parser.add_argument("--ray", action="store_true", help="evaluate the populations on Ray actors (--workers of them) "
                        "instead of local processes: this machine, or a cluster with --address (needs the sweep "
                        "extra)")
    parser.add_argument("--address", metavar="HOST:PORT", help="with --ray: the Ray cluster to join")
    parser.add_argument("--task", default="goalie_penalty_kick", help="task whose reset pose the robot starts from")
    parser.add_argument("--seed", type=int, default=0, help="CMA-ES seed (default 0)")
    return parser


def check_search_flags(args: argparse.Namespace) -> None:
    """The CMA-ES flags both tuners share; UsageError on a bad value."""
    for flag in ("generations", "workers"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.popsize < 4:
        raise UsageError(f"--popsize must be >= 4 for CMA-ES, got {args.popsize}")
    if not (math.isfinite(args.sigma) and args.sigma > 0):
        raise UsageError(f"--sigma must be finite and > 0, got {args.sigma}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_search_flags(args)
    if not (math.isfinite(args.seconds) and args.seconds > 2.5):
        raise UsageError("--seconds must exceed the 2 s settle time of the speed measurement (use 3 or more)")
    try:
        start, _ = load_walk_params(args.start)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.address is not None and not args.ray:
        raise UsageError("--address applies to --ray")
    run = tuner_run(args, TUNED, "skills.tune_walk", argv)
    start = run.start(WalkParams, start)
    out, state_path, command_line, options = run.out, run.state_path, run.command_line, run.options

    def result_doc(z: np.ndarray, cost: float, rows: list[dict], generation: int) -> dict:
        return {"params": dataclasses.asdict(to_params(start, z)), "objective": cost, "results": rows,
                "commands": [list(c) for c in COMMANDS], "stops": [list(c) for c in STOPS], "stop_at": STOP_AT,
                "dribbles": [list(c) for c in DRIBBLES],
                "tuner": {"options": options, "generation": generation, "tuned": TUNED, "fall_cost": FALL_COST,
                          "track_cap": TRACK_CAP, "tilt_cost": TILT_COST},
                "command_line": command_line}

    print(f"CMA-ES over {len(TUNED)} walk parameters, population {args.popsize}, {len(COMMANDS)} commands x "
          f"{args.seconds:g} s, {args.workers} workers", flush=True)
    best = search(names=list(TUNED), evaluate=evaluate, generations=args.generations, popsize=args.popsize,
                  sigma=args.sigma, seed=args.seed, workers=args.workers, init_worker=_init_worker,
                  init_args=(args.task, args.seconds, dataclasses.asdict(start)), out=out, state_path=state_path,
                  resume=run.resumed, result_doc=result_doc, extra={"start": dataclasses.asdict(start)},
                  unit="candidates", pool=_pool(args))
    print(f"best objective {best:.3f}; parameters in {out}; resume with --resume {state_path}")
    return 0


def _pool(args):
    """The pool the populations are evaluated in: local processes, or Ray actors with --ray."""
    if not args.ray:
        return local_pool
    from sweep.pool import RayPool

    return lambda workers, init_worker, init_args: RayPool(workers, init_worker, init_args, args.address)


def cli(main_fn=main, argv: Sequence[str] | None = None) -> int:
    """Run a tuner's main: a UsageError is one `error:` line and exit code 2, Ctrl-C exit 130."""
    try:
        return main_fn(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the best parameters and the state so far are on disk", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
