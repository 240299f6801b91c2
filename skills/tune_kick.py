"""Tune the kick (envs/kick.py) with CMA-ES on the fast simulator: ball speed straight ahead, no fall.

    python -m skills.tune_kick --generations 40 --out envs/kick_params.json

One evaluation, as the striker kicks: the Goalie reset with the ball BALL_START ahead and `ball_y` beside the
robot's line, the robot walking towards it at `approach_speed` (the walk engine), the kick fired when the ball
is `ball_x` ahead (both with a few centimetres of offset per trial, so a kick that only works in one exact
situation does not win) and played as the macro mode plays it over our walk engine (the PD law to each frame
plus the engine's balance feedback), then standing for `--after` seconds. Cost per trial: minus the ball's
speed along the robot's heading half a second after the kick, plus SIDEWAYS_COST times its sideways speed, plus,
after a fall,
FALL_COST times (2 - the fraction of the kick and the standing after it spent upright), so a later fall costs
less; the candidate's cost is the mean over TRIALS. Output, state and resume as the walk tuner's
(skills/cmaes.py).
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

from envs.kick import KickParams, kick_joint_targets, load_kick_params
from envs.preprocess import projected_gravity
from envs.walk import WalkEngine, load_walk_params
from envs.wrappers import T1_KD, T1_KP
from skills.cmaes import UsageError, search, tuner_run
from skills.tune_walk import check_search_flags, cli
from skills.walk_eval import _root_qpos, _trunk_pose

TUNED: dict[str, float] = {
    "shift": 0.04, "support_bend": 0.05, "wind_hip": 0.15, "wind_knee": 0.2, "wind_ankle": 0.1, "strike_hip": 0.2,
    "strike_knee": 0.1, "strike_ankle": 0.1, "t_shift": 0.1, "t_wind": 0.08, "t_strike": 0.04, "t_recover": 0.15,
    "ball_x": 0.04, "ball_y": 0.03,
}
"""The searched parameters and their scales."""
TRIALS = ((0.0, 0.0), (0.04, 0.0), (-0.03, -0.03), (0.0, 0.04))
"""Offsets (forward, left; m) of the firing distance and of the ball's place beside the line, one trial each."""
MIN_BALL_X = 0.24
"""The kick fires with the ball at least this far ahead of the trunk (m)."""
BALL_START = 1.2
"""The trial starts with the ball this far ahead (m): the robot walks up to it."""
MAX_APPROACH = 8.0
"""Seconds of walking before the kick fires anyway."""
SIDEWAYS_COST = 1.0
"""Cost per m/s of sideways ball speed (an aimed kick)."""
FALL_COST = 5.0
MEASURE_AFTER = 0.5


def to_params(start: KickParams, z: np.ndarray) -> KickParams:
    changes = {name: getattr(start, name) + float(v) * scale for (name, scale), v in zip(TUNED.items(), z, strict=True)}
    for name in ("t_shift", "t_wind", "t_strike", "t_recover"):
        changes[name] = min(2.0, max(0.02, changes[name]))
    # the striker stops with the ball this far ahead: nearer, its last steps push the ball away
    changes["ball_x"] = max(MIN_BALL_X, changes["ball_x"])
    return start.replace(**changes)


def kick_trial(env: Any, kick: KickParams, walk: Any, offset: tuple[float, float], after: float) -> dict:
    """One kick from the walk on `env` (module docstring): the ball's speed along the heading and sideways after
    the kick, whether the robot fell, and the share of the time from the kick on it stayed up."""
    import mujoco

    _, info = env.reset(seed=0)
    model, data = env.model, env.data
    joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "env:ball")
    qadr, dadr = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
    root = _root_qpos(env)
    xy, yaw = _trunk_pose(env, root)
    forward, left = np.array([math.cos(yaw), math.sin(yaw)]), np.array([-math.sin(yaw), math.cos(yaw)])
    # the ball BALL_START ahead, `ball_y` (+ the trial's offset) beside the line the robot walks
    data.qpos[qadr:qadr + 2] = xy + BALL_START * forward + (kick.ball_y + offset[1]) * left
    data.qvel[dadr:dadr + 6] = 0.0
    mujoco.mj_forward(model, data)
    engine = WalkEngine(walk)
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    fell, ticks, upright_ticks = False, 0, 0

    def tick(targets: np.ndarray, count: bool) -> None:
        nonlocal info, fell, ticks, upright_ticks
        _, _, _, _, info = env.step_pd(targets, engine.decimation, low, high, T1_KP, T1_KD, through=True)
        fell = fell or not (env._fall_height < data.site_xpos[env._robot_site][2])
        if count:
            ticks += 1
            upright_ticks += 0 if fell else 1

    def ball_ahead() -> float:
        rel = data.site_xpos[env._ball_site][:2] - data.site_xpos[env._robot_site][:2]
        return float(rel @ forward)

    command = np.array([kick.approach_speed, 0.0, 0.0])
    for _ in range(int(round(MAX_APPROACH / engine.tick))):
        if fell or ball_ahead() < kick.ball_x + offset[0]:
            break
        tick(engine.update(command, projected_gravity(info["robot_quat"]), info["robot_gyro"]), False)
    for frame in kick_joint_targets(kick):  # as WalkEngine.macro_step plays it: frame + balance feedback
        tick(frame + engine.feedback(projected_gravity(info["robot_quat"]), info["robot_gyro"]), True)
    engine.reset()
    for k in range(int(round(after / engine.tick))):
        tick(engine.update(np.zeros(3), projected_gravity(info["robot_quat"]), info["robot_gyro"]), True)
        if k == int(round(MEASURE_AFTER / engine.tick)):
            velocity = data.qvel[dadr:dadr + 2].copy()
    return {"forward": float(velocity @ forward), "sideways": float(velocity @ left), "fell": fell,
            "upright": upright_ticks / max(ticks, 1)}


_WORKER: dict[str, Any] = {}


def _init_worker(task: str, start: dict, walk_path: str | None, after: float) -> None:
    from envs.fastsim import make_fast_env

    _WORKER.update(env=make_fast_env(task), start=KickParams(**start), walk=load_walk_params(walk_path)[0],
                   after=after)


def evaluate(z: np.ndarray) -> tuple[float, list[dict]]:
    kick = to_params(_WORKER["start"], z)
    rows = [kick_trial(_WORKER["env"], kick, _WORKER["walk"], offset, _WORKER["after"]) for offset in TRIALS]
    costs = [-r["forward"] + SIDEWAYS_COST * abs(r["sideways"])
             + (FALL_COST * (2.0 - r["upright"]) if r["fell"] else 0.0) for r in rows]
    return float(np.mean(costs)), rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m skills.tune_kick", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", help="kick parameter file to start from (default: the shipped "
                        "envs/kick_params.json)")
    parser.add_argument("--walk-params", help="walk parameter file of the standing before and after the kick "
                        "(default: the shipped envs/walk_params.json)")
    parser.add_argument("--out", default="runs/tune_kick/kick_params.json", help="best parameters, written after "
                        "every improvement (default runs/tune_kick/kick_params.json)")
    parser.add_argument("--state", default=None, help="search state file (default: state.json beside --out)")
    parser.add_argument("--resume", metavar="STATE", help="continue from a state file of an earlier run")
    parser.add_argument("--generations", type=int, default=40, help="generations to run (default 40)")
    parser.add_argument("--popsize", type=int, default=16, help="candidates per generation (default 16)")
    parser.add_argument("--sigma", type=float, default=0.6, help="initial step size in scale units (default 0.6)")
    parser.add_argument("--after", type=float, default=1.5, help="seconds standing after the kick, to show it "
                        "did not fall (default 1.5)")
    parser.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)),
                        help="worker processes (default: the CPU count, at most 8)")
    parser.add_argument("--task", default="goalie_penalty_kick", help="task whose reset pose the robot starts from")
    parser.add_argument("--seed", type=int, default=0, help="CMA-ES seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_search_flags(args)
    if not (math.isfinite(args.after) and MEASURE_AFTER <= args.after <= 10.0):
        raise UsageError(f"--after must be in [{MEASURE_AFTER}, 10] s, got {args.after}")
    try:
        start, _ = load_kick_params(args.start)
        load_walk_params(args.walk_params)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    run = tuner_run(args, TUNED, "skills.tune_kick", argv)
    start = run.start(KickParams, start)
    out, state_path, command_line, options = run.out, run.state_path, run.command_line, run.options

    def result_doc(z: np.ndarray, cost: float, rows: list[dict], generation: int) -> dict:
        return {"params": dataclasses.asdict(to_params(start, z)), "objective": cost, "trials": rows,
                "tuner": {"options": options, "generation": generation, "tuned": TUNED, "offsets": TRIALS,
                          "fall_cost": FALL_COST, "sideways_cost": SIDEWAYS_COST, "min_ball_x": MIN_BALL_X},
                "command_line": command_line}

    print(f"CMA-ES over {len(TUNED)} kick parameters, population {args.popsize}, {len(TRIALS)} trials each, "
          f"{args.workers} workers", flush=True)
    best = search(names=list(TUNED), evaluate=evaluate, generations=args.generations, popsize=args.popsize,
                  sigma=args.sigma, seed=args.seed, workers=args.workers, init_worker=_init_worker,
                  init_args=(args.task, dataclasses.asdict(start), args.walk_params, args.after), out=out,
                  state_path=state_path, resume=run.resumed, result_doc=result_doc,
                  extra={"start": dataclasses.asdict(start)}, unit="candidates")
    print(f"best objective {best:.3f} (minus the ball's forward speed, m/s); parameters in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
