"""A finished (or stopped) sweep's results: one row per trial, the table, CSV, JSON, a learning-curve picture of
every trial, and the best trial's options as a run.yaml that `train.py --config` accepts.

The rows are read from Tune's result grid (config, status, the reported scores); the trials' own files stay in
their save dirs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from rlcore.fileio import atomic_write
from scoring.curves import line_chart_png
from sweep.runner import SCORE, TIMESTEP, TRIALS_DIR
from sweep.spec import SweepSpec

RESULT_FILES = ("results.csv", "results.json", "curves.png", "best_run.yaml")
BEST_RUN_DIR = "best_run"
"""Where the best run.yaml saves when rerun (inside the sweep dir; never a trial's own folder)."""


@dataclass(frozen=True)
class TrialRow:
    """One trial of a sweep."""

    trial: str
    config: dict[str, Any]
    status: str
    """finished, stopped early (by the scheduler), failed, or not finished (an interrupted sweep)."""
    best_score: float | None
    best_timestep: int | None
    last_timestep: int | None
    save_dir: str
    error: str | None = None
    curve: tuple[tuple[int, float], ...] = ()


def trial_rows(grid, spec: SweepSpec, sweep_dir: Path, *, interrupted: bool) -> list[TrialRow]:
    """The rows of Tune's result grid, best first (failed and unscored trials last). A trial short of its
    timesteps did not finish in an `interrupted` sweep, and was stopped early otherwise (by the scheduler or
    the time budget)."""
    rows = []
    for result in grid:
        trial = Path(result.path).name
        config = dict(result.config or {})
        frame = result.metrics_dataframe
        curve: list[tuple[int, float]] = []
        if frame is not None and SCORE in frame and TIMESTEP in frame:
            curve = [(int(t), float(s)) for t, s in zip(frame[TIMESTEP], frame[SCORE], strict=True)
                     if not math.isnan(float(s))]
        best = (max if spec.mode == "max" else min)(curve, key=lambda point: point[1]) if curve else None
        last = curve[-1][0] if curve else None
        if result.error is not None:
            status = "failed"
        elif last is not None and last >= _total_timesteps(spec, config):
            status = "finished"
        else:
            status = "not finished" if interrupted else "stopped early"
        error = None if result.error is None else " ".join(str(result.error).split())[-300:]
        rows.append(TrialRow(trial, config, status, best[1] if best else None, best[0] if best else None, last,
                             str(sweep_dir / TRIALS_DIR / trial), error, tuple(curve)))
    sign = -1.0 if spec.mode == "max" else 1.0
    return sorted(rows, key=lambda r: (r.best_score is None, sign * (r.best_score or 0.0), r.trial))


def _total_timesteps(spec: SweepSpec, config: dict[str, Any]) -> int:
    if "total_timesteps" in config:
        return int(config["total_timesteps"])
    return int(spec.base_options().total_timesteps)


def format_table(rows: list[TrialRow], spec: SweepSpec) -> str:
    """The printed table: one line per trial, best first."""
    names = list(spec.space)
    header = ["trial", *names, f"best {spec.score_key}", "at timestep", "status"]
    lines = [header]
    for row in rows:
        score = "-" if row.best_score is None else f"{row.best_score:+.3f}"
        lines.append([row.trial, *(_show(row.config.get(n)) for n in names), score,
                      "-" if row.best_timestep is None else str(row.best_timestep), row.status])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best_run_options(rows: list[TrialRow], spec: SweepSpec, sweep_dir: Path) -> dict[str, Any] | None:
    """The best trial's options (base + its config, its thread count), saving into the sweep's best_run folder."""
    scored = [r for r in rows if r.best_score is not None]
    if not scored:
        return None
    options = {**spec.base, **scored[0].config, "threads": max(1, int(spec.resources["cpu"])),
               "save_dir": str(sweep_dir / BEST_RUN_DIR)}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}


def write_results(rows: list[TrialRow], spec: SweepSpec, sweep_dir: Path) -> list[Path]:
    """results.csv, results.json, curves.png and best_run.yaml in `sweep_dir` (atomically); the paths written."""
    written = []
    names = list(spec.space)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["trial", *names, "best_score", "best_timestep", "last_timestep", "status", "save_dir", "error"])
    for r in rows:
        writer.writerow([r.trial, *(r.config.get(n) for n in names), r.best_score, r.best_timestep, r.last_timestep,
                         r.status, r.save_dir, r.error or ""])
    written.append(_write(sweep_dir / "results.csv", text.getvalue()))
    document = {"metric": spec.score_key, "mode": spec.mode,
                "trials": [{**asdict(r), "curve": [list(p) for p in r.curve]} for r in rows]}
    written.append(_write(sweep_dir / "results.json", json.dumps(document, indent=2)))
    png = render_curves(rows, spec)
    if png is not None:
        atomic_write(sweep_dir / "curves.png", lambda handle: handle.write(png))
        written.append(sweep_dir / "curves.png")
    best = best_run_options(rows, spec, sweep_dir)
    if best is not None:
        header = (f"# the best trial of the sweep in {sweep_dir} ({rows[0].trial}): "
                  "python train.py --config <this file>\n")
        written.append(_write(sweep_dir / "best_run.yaml", header + yaml.safe_dump(best, sort_keys=True)))
    return written


def _write(path: Path, text: str) -> Path:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    return path


def render_curves(rows: list[TrialRow], spec: SweepSpec) -> bytes | None:
    """Every trial's reported score against timesteps, one line each (PNG bytes; None when nothing was scored)."""
    drawn = [r for r in rows if r.curve]
    if not drawn:
        return None

    def draw(ax) -> None:
        for row in drawn:
            steps, scores = zip(*row.curve, strict=True)
            label = ", ".join(f"{n}={_show(row.config.get(n))}" for n in spec.space)
            ax.plot(steps, scores, marker="o", label=f"{row.trial} {label} ({row.status})")
        ax.set(xlabel="timesteps", ylabel=spec.score_key, title="sweep: every trial's evaluations")
        ax.legend(fontsize="x-small")

    return line_chart_png(draw)
