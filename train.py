"""Train TD3, SAC or PPO: on the soccer tasks (default) or on any gymnasium Box task (--env-id).

    python train.py                                   # the best measured recipe (--recipe striker-residual)
    python train.py --env-id Pendulum-v1 --algo sac --total-timesteps 15000 --seed 0 --save-dir runs/p

Flags left unset keep the defaults: the soccer workflow's presets (workflow/presets.py) on the soccer tasks, then
the algorithm config's (rlcore/config.py); --help shows them per algorithm. The run's save dir receives
checkpoint.pt (resumable with --resume-model), metrics.jsonl, TensorBoard event files and, at the end,
final_model.zip (SB3) with final_model.meta.json and submission_final/ (submission/bundle.py). --resume-model
X.zip warm-starts from an SB3 zip instead (weights only). The run itself is workflow.train(options).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from rlcore.cliutil import ArgumentParser, parse_with_config, run_cli
from rlcore.runner import Interrupted
from workflow.options import build_parser as build_options_parser
from workflow.options import options_from_args
from workflow.presets import DEFAULT_RECIPE, expand_recipe
from workflow.training import train


def build_parser() -> ArgumentParser:
    """The train.py command line (made from workflow.options.TrainOptions)."""
    return build_options_parser("train.py", __doc__.split("\n\n")[0])


def resume_command(argv: list[str], checkpoint: Path) -> str:
    """`argv` with --resume-model pointing at `checkpoint` (the command that continues an interrupted run)."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--resume-model":
            skip = True
            continue
        if not token.startswith("--resume-model="):
            kept.append(token)
    return shlex.join([*kept, "--resume-model", str(checkpoint)])


def main(argv: Sequence[str] | None = None) -> int:
    """Parse (a recipe, a --config file, flags), train, print the summary; the exit code."""
    given = list(sys.argv[1:] if argv is None else argv)
    argv = expand_recipe(given)
    options = options_from_args(parse_with_config(build_parser(), argv))
    if argv != given:  # a recipe: say what it stands for
        print(f"recipe: python train.py {' '.join(argv)}")
    try:
        result = train(options)
    except Interrupted as stop:
        typed = given or ["--recipe", DEFAULT_RECIPE]  # as typed: a recipe's flags are not spelled out twice
        print(f"{stop.signal_name} at timestep {stop.timesteps}: wrote {stop.checkpoint}; resume with: "
              f"python train.py {resume_command(typed, stop.checkpoint)}", file=sys.stderr)
        return 128 + stop.signum
    print("\n== summary ==\n" + "\n".join(result.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
