"""Evaluate a policy on the soccer tasks with the official competition score (or a model on any gym task).

    python evaluate.py --policy stand --tasks all --episodes 5 --eval-seeds 0,1,2,3 --json out.json
    python evaluate.py --model runs/x/checkpoint.pt --tasks all
    python evaluate.py --model runs/x/final_model.zip --tasks all     # an SB3 zip (ours or SB3's own)
    python evaluate.py --model runs/bc_actor.pt --tasks all           # a BC actor of python -m bc.train
    python evaluate.py --model runs/p/checkpoint.pt --env-id Pendulum-v1 --episodes 10

Prints one line per finished episode, then a table per task (comp_total mean ± std, success / offside /
fallen rates, mean episode length) and C_overall (sum over tasks) and C_mean (mean over tasks).
Reset seeds and scoring are defined in scoring/harness.py; this file only parses and wires.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bc.cloning import bc_policy, check_bc, is_bc
from bc.mocap_dataset import ACTION_DIMS
from bc.stand import StandController
from envs.command import CommandOptions
from envs.fastsim import SIMS
from envs.preprocess import OBS_DIM
from envs.tasks import KTT_STEPS_WEIGHT, get_task, parse_task_names
from envs.walk import load_walk_params
from rlcore.checkpoint import check_checkpoint, read_weights_only, restore_algorithm
from rlcore.cliutil import ArgumentParser, UsageError, finite_float, parse_seeds, run_cli
from rlcore.fileio import atomic_write, check_output_dir, check_output_file
from rlcore.gym_env import evaluate_over_seeds
from scoring.harness import MAX_EPISODES, Policy, ProgressPrinter, episode_seed, evaluate, format_table, result_to_json
from scoring.video import record_video
from skills.residual import RESIDUAL_KEY, residual_wrapper
from skills.striker import StrikerPolicy, striker_config, striker_settings
from submission import check_run_metadata, env_spaces, load_zip_policy

POLICIES = ("zero", "random", "stand", "striker")


def build_parser() -> ArgumentParser:
    """The evaluate.py command line."""
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", choices=POLICIES, help="a scripted policy to evaluate")
    source.add_argument("--model", help="a checkpoint.pt written by train.py (its normaliser included), an SB3 "
                        ".zip (its normaliser read from the X.meta.json beside it, when there is one), or a BC "
                        "actor of python -m bc.train")
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


def make_policy(name: str, walk_params: str | None = None) -> tuple[Policy, dict]:
    """(policy callable, env settings) for a --policy name: zero / random torques (random draws from a fixed
    seed), the stand controller, or the striker (command mode over our walk engine, `walk_params` its file)."""
    if name == "zero":
        return (lambda obs: np.zeros((len(obs), 12), dtype=np.float32)), {}
    if name == "random":
        rng = np.random.default_rng(0)
        return (lambda obs: rng.uniform(-1.0, 1.0, (len(obs), 12)).astype(np.float32)), {}
    if name == "striker":
        return StrikerPolicy(striker_config()), striker_settings(walk_params)
    return StandController(), {}


def _write_json_atomic(path: Path, document: dict) -> None:
    """Readers never see half a file (rlcore.checkpoint.atomic_write)."""
    atomic_write(path, lambda handle: handle.write(json.dumps(document, indent=2).encode()))


def load_model(path: str, device: str, env_id: str | None = None, deterministic: bool = True):
    """(policy callable, label, payload, env settings) of a checkpoint.pt, a BC actor or an SB3 .zip (for the
    soccer tasks, or for `env_id`); a bad file, or one whose widths do not fit the env, is a UsageError."""
    try:
        if path.endswith(".zip"):
            loaded = load_zip_policy(path, device, env_id)
            if loaded.note:
                print(loaded.note)
            return _act(loaded.policy, deterministic), loaded.label, loaded.meta, loaded.settings
        payload = read_weights_only(Path(path), device, "model")  # one read: a BC payload or a checkpoint
        if is_bc(payload):
            bc_payload = check_bc(payload, path)
            settings = {"action_mode": bc_payload.get("action_mode") or "torque",
                        "action_repeat": bc_payload.get("action_repeat") or 1}
            _check_widths(path, bc_payload["obs_dim"], bc_payload["action_dim"], settings["action_mode"], env_id)
            if bc_payload.get("command") is not None:  # the controller and limits its demonstrations ran
                settings["command"] = _prepared(CommandOptions.from_dict(bc_payload["command"]), path)
            elif settings["action_mode"] == "command" and env_id is None:
                raise ValueError(f"{path} acts in command mode but does not say over which controller (a BC actor "
                                 "of an older bc.train): train it again from its bc.record dataset")
            label = f"BC {bc_payload['algo']} actor"
            return _act(bc_policy(bc_payload, device), deterministic), label, bc_payload, settings
        payload = check_checkpoint(payload, path)
        meta = payload["metadata"]
        check_run_metadata(meta, path)
        _check_widths(path, payload["obs_shape"][0], len(payload["action_low"]), meta.get("action_mode", "torque"),
                      env_id, (payload["action_low"], payload["action_high"]))
        policy = restore_algorithm(payload, device, where=path).policy
    except ValueError as exc:
        raise UsageError(f"--model: {exc}") from None
    except RuntimeError as exc:  # e.g. an unknown or unavailable --device
        raise UsageError(f"--model: cannot load on device {device!r}: {exc}".splitlines()[0]) from None
    settings = {"action_mode": meta.get("action_mode", "torque"), "action_repeat": meta.get("action_repeat", 1)}
    if meta.get("command") is not None:  # the controller files and limits the run trained with
        settings["command"] = _prepared(CommandOptions.from_dict(meta["command"]), path)
    if meta.get(RESIDUAL_KEY) is not None:  # its actions correct the striker's commands
        settings["outer"] = residual_wrapper(meta[RESIDUAL_KEY], settings["action_repeat"])
    label = f"{payload['algo']} @ {payload['runner'].get('timesteps', 0)} steps"
    return _act(policy, deterministic), label, payload, settings


def _prepared(command: CommandOptions, path: str) -> CommandOptions:
    """`command` with its controller and macro files found and read now (ValueError naming `path` if they cannot
    be: a download that is unavailable here, a file gone), not at the first episode."""
    try:
        command.prepare()
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: its command-mode controller cannot be loaded: {str(exc).splitlines()[0]}") from None
    return command


def _check_widths(path: str, obs_dim: int, act_dim: int, action_mode: str, env_id: str | None,
                  bounds: tuple[list, list] | None = None) -> None:
    """ValueError unless a network of these widths (and, for a checkpoint on a gymnasium env, action bounds) fits
    the env it is about to be evaluated on."""
    if env_id is None:
        if action_mode not in ACTION_DIMS:
            raise ValueError(f"{path}: unknown action mode {action_mode!r}"[:200])
        want_obs, want_act = OBS_DIM, ACTION_DIMS[action_mode]
        where = f"the soccer tasks in {action_mode} mode"
    else:
        want_obs, low, high = env_spaces(env_id=env_id)
        want_act, where = len(low), env_id
        if bounds is not None and act_dim == want_act and not (np.allclose(bounds[0], low) and
                                                              np.allclose(bounds[1], high)):
            raise ValueError(f"{path} acts in the bounds {bounds[0]} .. {bounds[1]}, {env_id}'s are "
                             f"{low.tolist()} .. {high.tolist()}")
    if (obs_dim, act_dim) != (want_obs, want_act):
        raise ValueError(f"{path} takes {obs_dim}-dim observations and gives {act_dim}-dim actions; {where} "
                         f"need {want_obs} and {want_act}")


def _act(policy, deterministic: bool) -> Policy:
    """The harness callable of a DeployedPolicy, deterministic or sampling."""
    return lambda obs: policy.predict(obs, deterministic=deterministic)


def evaluate_gym(args, seeds: list[int]) -> int:
    """The generic path: mean deterministic return of a checkpoint on a gymnasium env."""
    if args.model is None:
        raise UsageError("--env-id needs --model")
    act, label, payload, _ = load_model(args.model, args.device, args.env_id, args.deterministic)
    json_path = _json_path(args.json)
    try:
        records = evaluate_over_seeds(args.env_id, act, args.episodes, seeds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    returns = [r["return"] for r in records]
    document = {"env_id": args.env_id, "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
                "episodes": records}
    print(f"{args.env_id}: {label}, {len(records)} episodes, mean return {document['mean_return']:.2f} "
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
        policy, label, _, settings = load_model(args.model, args.device, deterministic=args.deterministic)
        print(f"evaluating {label} from {args.model}")
    else:
        policy, settings = make_policy(args.policy, args.walk_params)
        label = args.policy
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
