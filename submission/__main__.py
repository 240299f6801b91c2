"""Write the SB3 zip, its meta document and the submission folder of a saved checkpoint, or its TorchScript export.

    python -m submission runs/x/checkpoint.pt                 # runs/x/final_model.zip + submission_final/
    python -m submission runs/x/checkpoint.pt --kind best --save-dir out
    python -m submission runs/x/checkpoint.pt --torchscript   # final_model.pt + submission_final_torchscript/
    python -m submission runs/x/checkpoint.pt --torchscript --controller ctrl.pt --macro kick.npz

train.py does this at the end of every run; this is for checkpoints saved before that, or to export again.
The meta document records the checkpoint's last evaluation (the scores of these very weights when the
checkpoint followed an evaluation, as train.py's do). Only torque-mode policies become SB3 zips; every soccer
policy (torque, pd, command) exports with --torchscript (submission/torchscript.py).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from envs.command import CommandOptions
from rlcore.checkpoint import load_checkpoint, restore_algorithm
from rlcore.cliutil import ArgumentParser, UsageError, run_cli
from rlcore.fileio import check_output_dir
from submission.bundle import MODEL_FILES, check_exportable, check_run_metadata, env_spaces, is_soccer, write_model
from submission.torchscript import command_options, torchscript_paths, write_striker_submission, write_torchscript
from workflow.policies import file_kind

COMMAND_OVERRIDES = {"controller": "controller", "controller_config": "controller_config", "macro": "macro"}
"""CLI option -> CommandOptions field it replaces in the run's recorded command-mode options."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m submission", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", help="a checkpoint.pt written by train.py")
    parser.add_argument("--policy", choices=["striker"], help="instead of a checkpoint: the scripted striker over our "
                        "walk engine as a TorchScript submission (--save-dir DIR gets model.pt, preprocessor.py)")
    parser.add_argument("--walk-params", metavar="PATH", help="with --policy striker: the walk engine's parameter "
                        "file (default: the shipped envs/walk_params.json)")
    parser.add_argument("--kind", choices=sorted(MODEL_FILES), default="final",
                        help="which file names to write: final (final_model.zip, submission_final/), best "
                        "(best_model_competition.zip, submission_best/), best_legacy (best_model.zip) or "
                        "best_gpk/best_opk/best_ktt (best_model_<task>.zip); default final")
    parser.add_argument("--save-dir", help="where to write (default: the checkpoint's directory)")
    parser.add_argument("--torchscript", action="store_true",
                        help="soccer: write the TorchScript torque module instead (<kind stem>.pt, torques in N·m) "
                        "and submission_<kind>_torchscript/; the way to submit pd and command policies")
    parser.add_argument("--controller", metavar="PATH", help="with --torchscript, command mode: the walking "
                        "controller's TorchScript file (default: the one the run recorded)")
    parser.add_argument("--controller-config", metavar="PATH", help="with --torchscript, command mode: its YAML "
                        "(default: the run's, or the .yaml next to --controller)")
    parser.add_argument("--macro", metavar="PATH_OR_NAME", help="with --torchscript, command mode: the kick macro "
                        "(default: the run's)")
    args = parser.parse_args(argv)
    if args.policy is not None or args.walk_params is not None:
        return export_striker(args)
    if args.checkpoint is None:
        raise UsageError("give a checkpoint.pt, or --policy striker --save-dir DIR")
    overrides = {field: getattr(args, option) for option, field in COMMAND_OVERRIDES.items()
                 if getattr(args, option) is not None}
    if overrides and not args.torchscript:
        raise UsageError(f"--{next(iter(overrides)).replace('_', '-')} applies to --torchscript exports only")
    save_dir = Path(args.checkpoint).parent if args.save_dir is None else Path(args.save_dir)
    if args.save_dir is not None and not args.save_dir.strip():
        raise UsageError(f"--save-dir needs a directory path, got {args.save_dir!r}")
    try:
        kind = file_kind(Path(args.checkpoint)) if Path(args.checkpoint).is_file() else "torch"
        if kind != "torch":
            raise ValueError(f"{args.checkpoint} is {'an SB3 zip' if kind == 'zip' else 'a TorchScript module'}, "
                             "already a model: its submission folder sits beside it; export takes train.py's "
                             "checkpoint.pt")
        payload = load_checkpoint(Path(args.checkpoint))
        metadata = payload["metadata"]
        check_run_metadata(metadata, args.checkpoint)
        if args.torchscript and not is_soccer(metadata):
            raise ValueError(f"{args.checkpoint} was not trained on the soccer tasks: --torchscript exports soccer "
                             "policies (89-dim observation in, torques out)")
        if not args.torchscript:
            check_exportable(metadata)
        if not (is_soccer(metadata) or "env_id" in metadata):
            raise ValueError(f"{args.checkpoint} does not say which env it was trained on")
        obs_dim, low, high = (env_spaces(task=metadata["tasks"][0]) if is_soccer(metadata)
                              else env_spaces(env_id=metadata["env_id"]))
        if payload["obs_shape"] != [obs_dim]:
            raise ValueError(f"{args.checkpoint} takes {payload['obs_shape'][0]}-dim observations; the env it names "
                             f"gives {obs_dim}")
        algo = restore_algorithm(payload, where=args.checkpoint)
        check_output_dir(save_dir, "--save-dir")
        timesteps, scores = payload["runner"].get("timesteps", 0), payload["runner"].get("last_eval", {})
        if args.torchscript:
            command = command_override(metadata, overrides)
            path = write_torchscript(save_dir, args.kind, algo.policy, metadata, algo=algo.name, action_low=low,
                                     action_high=high, timesteps=timesteps, scores=scores, command=command)
            print(f"wrote {path} and {torchscript_paths(save_dir, args.kind)[1]}")
            return 0
        path = write_model(save_dir, args.kind, algo, metadata, action_low=low, action_high=high,
                           timesteps=timesteps, scores=scores)
    except ValueError as exc:  # NotExportable and bad controller / macro files included
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write into {save_dir}: {exc.strerror or exc}") from None
    print(f"wrote {path}, {path.with_suffix('.meta.json').name} and {path.parent / MODEL_FILES[args.kind][1]}")
    return 0


def export_striker(args) -> int:
    """python -m submission --policy striker --save-dir DIR [--walk-params PATH]."""
    if args.policy is None:
        raise UsageError("--walk-params applies to --policy striker")
    if args.checkpoint is not None:
        raise UsageError("--policy striker exports a scripted policy: give no checkpoint")
    if not args.save_dir or not args.save_dir.strip():
        raise UsageError("--policy striker needs --save-dir DIR")
    for flag in ("torchscript", "controller", "controller_config", "macro"):
        if getattr(args, flag):
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to --policy striker")
    if args.kind != "final":
        raise UsageError("--kind does not apply to --policy striker")
    try:
        check_output_dir(Path(args.save_dir), "--save-dir")
        path = write_striker_submission(Path(args.save_dir), walk_params=args.walk_params)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write into {args.save_dir}: {exc.strerror or exc}") from None
    print(f"wrote {path} and {path.with_name('preprocessor.py')} (scripted striker over the walk engine)")
    return 0


def command_override(metadata: dict, overrides: dict[str, str]) -> CommandOptions | None:
    """The run's command-mode options with the CLI's file overrides; None outside command mode (where an
    override is an error)."""
    if metadata.get("action_mode") != "command":
        if overrides:
            raise ValueError(f"--{next(iter(overrides)).replace('_', '-')} applies to command-mode policies only; "
                             f"this one is {metadata.get('action_mode', 'torque')}")
        return None
    options = command_options(metadata)
    if "controller" in overrides and "controller_config" not in overrides:
        overrides = {**overrides, "controller_config": None}  # the YAML next to the new controller
    return dataclasses.replace(options, **overrides)


if __name__ == "__main__":
    sys.exit(run_cli(main))
