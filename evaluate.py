"""Evaluate a policy on the soccer tasks with the official competition score (or a model on any gym task).

    python evaluate.py --policy stand --tasks all --episodes 5 --eval-seeds 0,1,2,3 --json out.json
    python evaluate.py --model runs/x/checkpoint.pt --tasks all
    python evaluate.py --model runs/x/final_model.zip --tasks all     # an SB3 zip (ours or SB3's own)
    python evaluate.py --model runs/bc_actor.pt --tasks all           # a BC actor of python -m bc.train
    python evaluate.py --model runs/x/final_model.pt --tasks all      # a TorchScript torque module
    python evaluate.py --model runs/p/checkpoint.pt --env-id Pendulum-v1 --episodes 10

Prints one line per finished episode, then a table per task (comp_total mean ± std, success / offside /
fallen rates, mean episode length) and C_overall (sum over tasks) and C_mean (mean over tasks).
Reset seeds and scoring are defined in scoring/harness.py, policy files are read by workflow/policies.py;
this file only parses and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from envs.fastsim import SIMS
from envs.tasks import KTT_STEPS_WEIGHT, get_task, parse_task_names
from envs.walk import load_walk_params
from rlcore.cliutil import ArgumentParser, UsageError, finite_float, parse_seeds, run_cli
from rlcore.fileio import atomic_write, check_output_dir, check_output_file
from rlcore.gym_env import evaluate_over_seeds
from scoring.harness import MAX_EPISODES, ProgressPrinter, episode_seed, evaluate, format_table, result_to_json
from scoring.video import record_video
from workflow.policies import SCRIPTED, LoadedPolicy, load_policy, scripted_policy

POLICIES = SCRIPTED


def build_parser() -> ArgumentParser:
    """The evaluate.py command line."""
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", choices=POLICIES, help="a scripted policy to evaluate")
    source.add_argument("--model", help="a checkpoint.pt written by train.py (its normaliser included), an SB3 "
                        ".zip (its normaliser read from the X.meta.json beside it, when there is one), a BC "
                        "actor of python -m bc.train, or a TorchScript torque module (final_model.pt)")
    parser.add_argument("--env-id", help="with --model: evaluate on this gymnasium env (mean return) instead")
    parser.add_argument("--device", default="cpu", help="torch device for --model (default cpu)")
    parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=True,
                        help="--model acts with its deterministic action, as training evaluates and the platform "
                        "runs it (default); --no-deterministic samples (SAC, PPO; TD3 stays deterministic)")
    parser.add_argument("--tasks", default="all", help="comma-separated task names, or 'all' (default)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per eval seed per task (default 5)")
    parser.add_argument("--eval-seeds", help="comma-separated distinct seeds >= 0 (default: soccer 0,1,2,3, "
                        "--env-id 0)")
    parser.add_argument(
        "--ktt-steps-weight", type=finite_float, default=KTT_STEPS_WEIGHT,
        help=f"kick_to_target 'steps' weight of the official score (default {KTT_STEPS_WEIGHT})",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="episodes run in lock-step (default 8)")
    parser.add_argument("--sim", choices=SIMS, help="simulator of the soccer tasks: official (sai_mujoco's own step, "
                        "the figure to quote; the default) or fast (our twin, equal to it step for step)")
    parser.add_argument("--max-episode-steps", type=int, help="cut episodes at this many steps instead of the "
                        "tasks' 5000: for smoke tests; the competition runs 5000")
    parser.add_argument("--json", metavar="OUT", help="write per-episode records and aggregates here")
    parser.add_argument("--video", metavar="DIR", help="write a GIF of one episode per task into DIR")
    parser.add_argument("--walk-params", metavar="PATH", help="--policy striker: the walk engine's parameter file "
                        "(default: the shipped envs/walk_params.json)")
    return parser


def _write_json_atomic(path: Path, document: dict) -> None:
    """Readers never see half a file (rlcore.fileio.atomic_write)."""
    atomic_write(path, lambda handle: handle.write(json.dumps(document, indent=2).encode()))


def load_model(path: str, device: str, env_id: str | None = None, deterministic: bool = True) -> LoadedPolicy:
    """A --model file of any kind (workflow.policies.load_policy); a bad one is a UsageError."""
    try:
        loaded = load_policy(path, device=device, env_id=env_id, deterministic=deterministic)
    except ValueError as exc:
        raise UsageError(f"--model: {exc}") from None
    if loaded.kind == "scripted":
        raise UsageError(f"--model {path}: no such file (scripted policies are --policy)")
    if loaded.note:
        print(loaded.note)
    return loaded


def evaluate_gym(args, seeds: list[int]) -> int:
    """The generic path: mean deterministic return of a checkpoint on a gymnasium env."""
    if args.model is None:
        raise UsageError("--env-id needs --model")
    loaded = load_model(args.model, args.device, args.env_id, args.deterministic)
    json_path = _json_path(args.json)
    try:
        records = evaluate_over_seeds(args.env_id, loaded.policy, args.episodes, seeds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    returns = [r["return"] for r in records]
    document = {"env_id": args.env_id, "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
                "episodes": records}
    print(f"{args.env_id}: {loaded.label}, {len(records)} episodes, mean return {document['mean_return']:.2f} "
          f"+- {document['std_return']:.2f}")
    if json_path is not None:
        _write_json_atomic(json_path, document)
        print(f"wrote {json_path}")
    return 0


def _json_path(text: str | None) -> Path | None:
    """The --json path, checked before any episode runs: a regular file or absent, in a writable folder (a FIFO,
    a device such as /dev/stdout, or a directory is an error)."""
    return None if text is None else check_output_file(text, "--json", make_parent=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Check every input (UsageError), run the episodes, print the table, write the JSON and videos."""
    args = build_parser().parse_args(argv)
    seeds = parse_seeds(args.eval_seeds or ("0" if args.env_id else "0,1,2,3"), "--eval-seeds")
    if not 1 <= args.episodes <= MAX_EPISODES:
        raise UsageError(f"--episodes must be in [1, {MAX_EPISODES}], got {args.episodes}")
    if args.env_id is not None:
        if args.sim is not None:
            raise UsageError("--sim applies to the soccer tasks, not to --env-id")
        return evaluate_gym(args, seeds)
    if args.walk_params is not None:
        if args.policy != "striker":
            raise UsageError("--walk-params applies to --policy striker")
        try:
            load_walk_params(args.walk_params)
        except ValueError as exc:
            raise UsageError(f"--walk-params: {exc}") from None
    try:
        tasks = parse_task_names(args.tasks)
    except ValueError as exc:
        raise UsageError(f"--tasks: {exc}") from None
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_episode_steps is not None and args.max_episode_steps < 1:
        raise UsageError(f"--max-episode-steps must be >= 1, got {args.max_episode_steps}")
    json_path = _json_path(args.json)
    video_dir = Path(args.video) if args.video else None
    if video_dir is not None:
        # mujoco picks its GL backend when first imported (at the first env): headless EGL unless set.
        os.environ.setdefault("MUJOCO_GL", "egl")
        check_output_dir(video_dir, "--video")

    if args.model is not None:
        loaded = load_model(args.model, args.device, deterministic=args.deterministic)
        print(f"evaluating {loaded.label} from {args.model}")
    else:
        loaded = scripted_policy(args.policy, walk_params=args.walk_params)
    policy, settings = loaded.policy, loaded.settings
    result = evaluate(
        policy, tasks, args.episodes, seeds, ktt_steps_weight=args.ktt_steps_weight, batch_size=args.batch_size,
        max_episode_steps=args.max_episode_steps, progress=ProgressPrinter(args.ktt_steps_weight),
        sim=args.sim or "official", **settings,
    )
    print(format_table(result))
    if json_path is not None:
        _write_json_atomic(json_path, result_to_json(result))
        print(f"wrote {json_path}")
    if video_dir is not None:
        for task in tasks:
            path = video_dir / f"{args.policy or 'model'}_{get_task(task).suffix}.gif"
            record_video(policy, task, path, seed=episode_seed(seeds[0], get_task(task).index, 0), **settings)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
