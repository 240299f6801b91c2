"""Hyper-parameter sweeps over train runs on Ray Tune, on this machine or a Ray cluster.

    python -m sweep --config sweep.yaml                      # Ray in this process, the machine's CPUs
    python -m sweep --config sweep.yaml --address HEAD:6379  # join a cluster (`ray start --head` on HEAD)
    python -m sweep --config sweep.yaml --resume             # continue an interrupted sweep in the same --dir

The sweep file's keys are in sweep/spec.py. Each trial is a train.py run in <dir>/trials/<trial>/; the sweep
writes <dir>/results.csv, results.json, curves.png and best_run.yaml (`python train.py --config` reruns the
best trial). Needs the sweep extra: pip install -e ".[sweep]".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rlcore.cliutil import ArgumentParser, UsageError, run_cli
from rlcore.fileio import check_output_dir
from sweep import spec as spec_module
from sweep.spec import read_spec


def build_parser() -> ArgumentParser:
    example = spec_module.__doc__.split("\n\n")[1]
    parser = ArgumentParser(prog="python -m sweep", description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="a sweep file (every key but space is optional):\n\n" + example)
    parser.add_argument("--config", required=True, metavar="SWEEP.yaml", help="the sweep file (sweep/spec.py)")
    parser.add_argument("--dir", help="the sweep's folder (default runs/sweeps/<config file stem>)")
    parser.add_argument("--address", metavar="HOST:PORT", help="join the Ray cluster there instead of starting Ray "
                        "in this process")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --dir: unfinished trials "
                        "restart from their checkpoint.pt, finished ones are kept")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = read_spec(args.config)
    try:
        import ray  # the optional extra
    except ImportError:
        raise UsageError('the sweep needs Ray Tune: pip install -e ".[sweep]"') from None
    from sweep.results import format_table, trial_rows, write_results
    from sweep.runner import run_sweep, start_ray

    sweep_dir = check_output_dir(args.dir or f"runs/sweeps/{Path(args.config).stem}", "--dir").resolve()
    start_ray(args.address, spec)
    print(f"sweep: {spec.trials} x {spec.grid_size()} trials, {spec.concurrency} at a time, ranking by "
          f"{spec.score_key} ({spec.mode}); scheduler {spec.scheduler}; folder {sweep_dir}", flush=True)
    try:
        grid, interrupted = run_sweep(spec, sweep_dir, resume=args.resume)
        rows = trial_rows(grid, spec, sweep_dir, interrupted=interrupted)
    finally:
        ray.shutdown()
    print(format_table(rows, spec))
    for path in write_results(rows, spec, sweep_dir):
        print(f"wrote {path}")
    for row in rows:
        if row.status == "failed":
            print(f"trial {row.trial} failed: {row.error}", file=sys.stderr)
    if interrupted:
        print(f"interrupted: finished trials keep their files; continue with python -m sweep --config "
              f"{args.config} --dir {sweep_dir} --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
