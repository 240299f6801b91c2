"""Build a behaviour-cloning dataset from mocap .npz files (bc/mocap_dataset.py says how).

    python -m bc.build_dataset --input-root booster_dataset/soccer/booster_lower_t1 --action-mode pd \\
        --output runs/bc/mocap_pd.npz --report

Flags follow the seed's build_bc_dataset.py (docs/seed_pipeline.md) where they still mean something; sentinels
and context modes exist only for `--action-mode command`. The seed's `--task-mode zeros` is gone: it made a
one-hot the env never shows.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from bc.dataset import save_npz
from bc.mocap import MocapError, load_mocap
from bc.mocap_dataset import ACTION_MODES, CONTEXT_MODES, TASK_MODES, BuildOptions, SentinelOptions, build_dataset
from rlcore.cliutil import ArgumentParser, UsageError, finite_float, run_cli
from rlcore.fileio import check_output_file

DEFAULT_FILES = ("goal_kick", "jogging", "kick_ball1", "kick_ball2", "kick_ball3", "pass_ball1", "powerful_kick",
                 "running", "soccer_drill_run", "walking")
DEFAULT_SENTINEL_FILES = ("kick_ball1", "kick_ball2", "kick_ball3", "pass_ball1", "powerful_kick", "goal_kick")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m bc.build_dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-root", default="booster_dataset/soccer/booster_lower_t1",
                        help="folder of the mocap .npz files (default booster_dataset/soccer/booster_lower_t1)")
    parser.add_argument("--output", help="output .npz (default booster_dataset/imitation_learning/bc_<mode>.npz)")
    parser.add_argument("--action-mode", choices=ACTION_MODES, default="torque",
                        help="label space: torque, pd or command (default torque, as train.py)")
    parser.add_argument("--action-repeat", type=int, default=1,
                        help="physics steps per decision; frames are resampled to 500 Hz / this (default 1)")
    parser.add_argument("--task-mode", choices=sorted(TASK_MODES), default="all",
                        help="task one-hots each frame is emitted with (all: one copy per task; default all)")
    parser.add_argument("--files", default="", help="comma-separated file names ('.npz' optional); "
                        f"empty = {','.join(DEFAULT_FILES)}")
    parser.add_argument("--exclude-files", default="", help="comma-separated file names to skip")
    parser.add_argument("--strict-files", action="store_true", help="a missing file is an error (else a warning)")
    parser.add_argument("--stride", type=int, default=2, help="keep every n-th resampled frame (default 2)")
    parser.add_argument("--max-samples", type=int, help="stop after exactly this many samples")
    parser.add_argument("--enable-sentinels", action="store_true",
                        help="command mode: write --sentinel-pattern on --sentinel-frames of --sentinel-files")
    parser.add_argument("--sentinel-files", default="", help="comma-separated names; empty = "
                        f"{','.join(DEFAULT_SENTINEL_FILES)}")
    parser.add_argument("--sentinel-frames", default="0-2",
                        help="source frames: 'a-b' inclusive, 'a:b' half-open, 'n'; comma-separated (default 0-2)")
    parser.add_argument("--sentinel-pattern", default="1,-1,1", help="3 values in [-1, 1] (default 1,-1,1)")
    parser.add_argument("--sentinel-threshold", type=finite_float, default=0.95,
                        help="report a sample as a sentinel when all(action * pattern >= this) (default 0.95)")
    parser.add_argument("--context-mode", choices=CONTEXT_MODES, default="keep",
                        help="synthetic ball/goal context: keep (zeros), sentinel, all (needs --enable-sentinels)")
    parser.add_argument("--ball-radius", type=finite_float, default=0.6, help="sentinel ball distance is half this (m)")
    parser.add_argument("--ball-far", type=finite_float, default=3.0, help="context 'all': far ball distance (m)")
    parser.add_argument("--goal-distance", type=finite_float, default=2.0, help="context goal distance (m)")
    parser.add_argument("--report", action="store_true", help="print per-file counts")
    return parser


def _names(text: str, default: Sequence[str]) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()] or list(default)
    return [t if t.endswith(".npz") else f"{t}.npz" for t in items]


def parse_frames(text: str) -> frozenset[int]:
    """'0-2,5,7:9' -> {0, 1, 2, 5, 7, 8}; UsageError on anything else."""
    frames: set[int] = set()
    try:
        for token in (t.strip() for t in text.split(",") if t.strip()):
            if "-" in token:
                a, b = (int(v) for v in token.split("-", 1))
                valid, span = b >= a >= 0, range(a, b + 1)
            elif ":" in token:
                a, b = (int(v) for v in token.split(":", 1))
                valid, span = b > a >= 0, range(a, b)
            else:
                valid, span = int(token) >= 0, [int(token)]
            if not valid:
                raise ValueError
            frames.update(span)
    except ValueError:
        raise UsageError(f"--sentinel-frames must be tokens 'a-b', 'a:b' (b > a) or 'n' with a, n >= 0, got {text!r}"
                         ) from None
    if not frames:
        raise UsageError(f"--sentinel-frames names no frame: {text!r}")
    return frozenset(frames)


def parse_pattern(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or any(not -1.0 <= v <= 1.0 for v in values):
        raise UsageError(f"--sentinel-pattern must be 3 comma-separated values in [-1, 1], got {text!r}")
    return values  # type: ignore[return-value]


def options_from_args(args) -> BuildOptions:
    """BuildOptions from the parsed flags; every inconsistency is a UsageError."""
    sentinels = None
    if args.enable_sentinels:
        sentinels = SentinelOptions(files=frozenset(_names(args.sentinel_files, DEFAULT_SENTINEL_FILES)),
                                    frames=parse_frames(args.sentinel_frames),
                                    pattern=parse_pattern(args.sentinel_pattern))
    try:
        return BuildOptions(action_mode=args.action_mode, action_repeat=args.action_repeat, task_mode=args.task_mode,
                            stride=args.stride, max_samples=args.max_samples, sentinels=sentinels,
                            sentinel_threshold=args.sentinel_threshold, context_mode=args.context_mode,
                            ball_radius=args.ball_radius, ball_far=args.ball_far, goal_distance=args.goal_distance)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = options_from_args(args)
    root = Path(args.input_root)
    if not root.is_dir():
        raise UsageError(f"--input-root {args.input_root!r} is not a directory")
    excluded = set(_names(args.exclude_files, ()))
    paths = []
    for name in (n for n in _names(args.files, DEFAULT_FILES) if n not in excluded):
        path = root / name
        if path.is_file():
            paths.append(path)
        elif args.strict_files:
            raise UsageError(f"missing mocap file {path} (--strict-files)")
        else:
            print(f"warning: skipping missing mocap file {path}", file=sys.stderr)
    if not paths:
        raise UsageError(f"none of the selected mocap files exist under {root}")
    output = check_output_file(args.output or f"booster_dataset/imitation_learning/bc_{options.action_mode}.npz",
                               "--output")
    try:
        clips = [load_mocap(p) for p in paths]
    except MocapError as exc:
        raise UsageError(str(exc)) from None

    built = build_dataset(clips, options)
    if len(built.observations) == 0:
        raise UsageError("the selected files produced no samples (every trajectory is shorter than two decisions)")
    save_npz(output, built.arrays(options))  # a failed write is one line, the previous file intact
    n = len(built.observations)
    print(f"Wrote {n} samples ({options.action_mode} actions, {options.decision_hz:g} Hz decisions, "
          f"{len(clips)} files) to {output}")
    if options.action_mode == "command":
        print(f"sentinels: {int(built.sentinels.sum())} of {n} samples ({100 * built.sentinels.sum() / n:.2f}%)")
    if args.report:
        for r in built.files:
            print(f"  {r.name}: {r.frames} frames @ {r.frequency:g} Hz -> {r.resampled} resampled, "
                  f"{r.samples} samples, {r.sentinels} sentinels")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
