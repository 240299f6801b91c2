"""Write the SB3 zip, its meta document and the submission folder of a saved checkpoint.

    python -m submission runs/x/checkpoint.pt                 # runs/x/final_model.zip + submission_final/
    python -m submission runs/x/checkpoint.pt --kind best --save-dir out

train.py does this at the end of every run; this is for checkpoints saved before that, or to export again.
The meta document records the checkpoint's last evaluation (the scores of these very weights when the
checkpoint followed an evaluation, as train.py's do).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlcore.algos import build_algorithm
from rlcore.checkpoint import checkpoint_config, load_checkpoint
from rlcore.cliutil import ArgumentParser, UsageError, run_cli
from submission.bundle import MODEL_FILES, check_exportable, env_spaces, is_soccer, write_model


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m submission", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint.pt written by train.py")
    parser.add_argument("--kind", choices=sorted(MODEL_FILES), default="final",
                        help="final (final_model.zip, submission_final/) or best (best_model_competition.zip, "
                        "submission_best/); default final")
    parser.add_argument("--save-dir", help="where to write (default: the checkpoint's directory)")
    args = parser.parse_args(argv)
    try:
        payload = load_checkpoint(Path(args.checkpoint))
        metadata = payload["metadata"]
        check_exportable(metadata)
        if not (is_soccer(metadata) or "env_id" in metadata):
            raise ValueError(f"{args.checkpoint} does not say which env it was trained on")
        _, low, high = (env_spaces(task=metadata["tasks"][0]) if is_soccer(metadata)
                        else env_spaces(env_id=metadata["env_id"]))
        algo = build_algorithm(payload["algo"], payload["obs_shape"][0], np.asarray(payload["action_low"], np.float32),
                               np.asarray(payload["action_high"], np.float32), checkpoint_config(payload))
        algo.load_state_dict(payload["algo_state"])
        save_dir = Path(args.save_dir) if args.save_dir else Path(args.checkpoint).parent
        path = write_model(save_dir, args.kind, algo, metadata, action_low=low, action_high=high,
                           timesteps=payload["runner"]["timesteps"], scores=payload["runner"]["last_eval"])
    except ValueError as exc:  # NotExportable included
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write into {args.save_dir or Path(args.checkpoint).parent}: "
                         f"{exc.strerror or exc}") from None
    print(f"wrote {path}, {path.with_suffix('.meta.json').name} and {path.parent / MODEL_FILES[args.kind][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
