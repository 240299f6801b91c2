"""Tune the walk engine's parameters with CMA-ES on the fast simulator.

    python -m skills.tune_walk --generations 60 --out envs/walk_params.json
    python -m skills.tune_walk --resume runs/tune_walk/state.json --generations 30 --out envs/walk_params.json

Every candidate (a full parameter set: the start file with the `TUNED` entries changed) walks one episode
of `--seconds` per command of `COMMANDS` (forward at two speeds, turning both ways, standing) on the fast
twin (skills/walk_eval.py). Its cost, to minimise, per command:
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
import json
import math
import multiprocessing as mp
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.walk import WalkParams, load_walk_params
from skills.walk_eval import WalkResult, walk_episode

COMMANDS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0), (0.2, 0.0, 0.0), (0.4, 0.0, 0.0), (0.0, 0.0, 0.5), (0.0, 0.0, -0.5), (0.0, 0.15, 0.0),
    (0.3, 0.0, 0.4))
"""The commands every candidate walks (vx m/s, vy m/s, yaw rate rad/s): the acceptance set (forward at two
speeds, turning both ways, standing) plus sideways and a curve, which the striker uses."""
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


class UsageError(ValueError):
    """Bad user input: one `error:` line and exit code 2."""


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


def _init_worker(task: str, seconds: float) -> None:
    from envs.fastsim import make_fast_env

    _WORKER["env"] = make_fast_env(task)
    _WORKER["seconds"] = seconds


def evaluate(params: WalkParams) -> tuple[float, list[dict]]:
    """(cost, per-command results) of one candidate, in this worker's env."""
    env, seconds = _WORKER["env"], _WORKER["seconds"]
    total, rows = 0.0, []
    for command in COMMANDS:
        result = walk_episode(params, command, env=env, seconds=seconds)
        cost = command_cost(result, seconds)
        total += cost
        rows.append({**dataclasses.asdict(result), "cost": cost})
    return total, rows


def write_json(path: Path, document: dict) -> None:
    """Write JSON through a temporary file renamed into place (nothing half-written on a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    parser.add_argument("--task", default="goalie_penalty_kick", help="task whose reset pose the robot starts from")
    parser.add_argument("--seed", type=int, default=0, help="CMA-ES seed (default 0)")
    return parser


def _check(args: argparse.Namespace) -> None:
    for flag in ("generations", "popsize", "workers"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.popsize < 4:
        raise UsageError(f"--popsize must be >= 4 for CMA-ES, got {args.popsize}")
    for flag in ("sigma", "seconds"):
        value = getattr(args, flag)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{flag} must be finite and > 0, got {value}")
    if args.seconds <= 2.5:
        raise UsageError("--seconds must exceed the 2 s settle time of the speed measurement (use 3 or more)")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")


def _load_state(path: str) -> dict:
    try:
        state = json.loads(Path(path).read_text())
        mean = np.asarray(state["mean"], np.float64)
        cov = np.asarray(state["covariance"], np.float64)
        sigma = float(state["sigma"])
        ok = (mean.shape == (len(TUNED),) and cov.shape == (len(TUNED),) * 2 and np.isfinite(mean).all()
              and np.isfinite(cov).all() and math.isfinite(sigma) and sigma > 0
              and list(state["tuned"]) == list(TUNED) and isinstance(state["generation"], int))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume {path}: not a tuner state file ({exc.__class__.__name__})") from None
    if not ok:
        raise UsageError(f"--resume {path}: the state does not match this tuner's parameters")
    return {**state, "mean": mean, "covariance": cov, "sigma": sigma}


def main(argv: Sequence[str] | None = None) -> int:
    import cma

    args = build_parser().parse_args(argv)
    _check(args)
    try:
        start, _ = load_walk_params(args.start)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    state_path = Path(args.state) if args.state else out.with_name("state.json")
    resumed = _load_state(args.resume) if args.resume else None
    if resumed is not None:
        start = WalkParams(**resumed["start"])
    dim = len(TUNED)
    x0 = resumed["mean"] if resumed else np.zeros(dim)
    sigma0 = resumed["sigma"] if resumed else args.sigma
    es = cma.CMAEvolutionStrategy(x0, sigma0, {"popsize": args.popsize, "seed": args.seed + 1, "verbose": -9})
    if resumed is not None:
        es.sm.C = resumed["covariance"]
        es.sm.update_now(-1)
    generation0 = resumed["generation"] if resumed else 0
    best_cost = resumed["best_cost"] if resumed else math.inf
    best_z = np.asarray(resumed["best"], np.float64) if resumed else x0
    command_line = "python -m skills.tune_walk " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    options = {k: v for k, v in vars(args).items()}
    ctx = mp.get_context("spawn")
    print(f"CMA-ES over {dim} walk parameters, population {args.popsize}, {len(COMMANDS)} commands x "
          f"{args.seconds:g} s, {args.workers} workers", flush=True)
    started = time.perf_counter()
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(args.task, args.seconds)) as pool:
        for generation in range(generation0 + 1, generation0 + args.generations + 1):
            tick = time.perf_counter()
            zs = es.ask()
            outcomes = pool.map(evaluate, [to_params(start, z) for z in zs])
            costs = [cost for cost, _ in outcomes]
            es.tell(zs, costs)
            i = int(np.argmin(costs))
            if costs[i] < best_cost:
                best_cost, best_z = costs[i], np.asarray(zs[i])
                params = to_params(start, best_z)
                write_json(out, {"params": dataclasses.asdict(params), "objective": best_cost,
                                 "results": outcomes[i][1], "commands": [list(c) for c in COMMANDS],
                                 "tuner": {"options": options, "generation": generation, "tuned": TUNED,
                                           "fall_cost": FALL_COST, "track_cap": TRACK_CAP, "tilt_cost": TILT_COST},
                                 "command_line": command_line})
            write_json(state_path, {"generation": generation, "mean": es.mean.tolist(), "sigma": float(es.sigma),
                                    "covariance": np.asarray(es.sm.C).tolist(), "best": best_z.tolist(),
                                    "best_cost": best_cost, "tuned": list(TUNED),
                                    "start": dataclasses.asdict(start)})
            elapsed = time.perf_counter() - tick
            falls = sum(r["fell"] for r in outcomes[i][1])
            print(f"gen {generation:4d}  best {costs[i]:8.2f} (ever {best_cost:8.2f}, falls {falls})  mean "
                  f"{np.mean(costs):8.2f}  sigma {es.sigma:.3f}  {len(zs) * len(COMMANDS) / elapsed:5.1f} "
                  f"episodes/s  [{time.perf_counter() - started:6.0f} s]", flush=True)
    print(f"best objective {best_cost:.3f}; parameters in {out}; resume with --resume {state_path}")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    try:
        return main(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the best parameters and the state so far are on disk", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
