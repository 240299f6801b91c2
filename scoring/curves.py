"""The learning-curve picture of a run: evaluation scores per task against timesteps.

Takes the evaluation rows of a run (dicts with "timestep" and the logged scores, as in metrics.jsonl), picks
the per-task competition scores (`comp_eval/<task>`), or the legacy ones (`eval/<task>`) when a run evaluated
only those, and draws one line per task plus the mean over tasks. Returns PNG bytes: the caller writes them
atomically (rlcore.checkpoint.atomic_write).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envs.tasks import TASK_NAMES

PREFIXES = ("comp_eval", "eval")
"""Key families tried in order: official scores first."""


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl (rlcore.logger), in file order; [] when the file does not exist. A line a
    killed run left unfinished (the file is appended to, one flushed line per record) is skipped."""
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def eval_series(rows: list[dict]) -> tuple[str, dict[str, list[tuple[int, float]]]]:
    """(prefix, {task: [(timestep, score), ...]}) of the evaluation rows; an empty dict when there are none."""
    for prefix in PREFIXES:
        series = {task: [(int(r["timestep"]), float(r[f"{prefix}/{task}"])) for r in rows if f"{prefix}/{task}" in r]
                  for task in TASK_NAMES}
        series = {task: points for task, points in series.items() if points}
        if series:
            return prefix, series
    return PREFIXES[0], {}


def render_learning_curve(rows: list[dict]) -> bytes | None:
    """The evaluation scores in `rows` drawn as a PNG; None when nothing was evaluated."""
    prefix, series = eval_series(rows)
    if not series:
        return None

    def draw(ax) -> None:
        for task, points in series.items():
            steps, scores = zip(*points, strict=True)
            ax.plot(steps, scores, marker="o", label=task)
        if len(series) > 1:
            common = sorted(set.intersection(*(set(s for s, _ in points) for points in series.values())))
            by_task = {task: dict(points) for task, points in series.items()}
            means = [sum(by_task[t][step] for t in series) / len(series) for step in common]
            ax.plot(common, means, color="black", linestyle="--", label="mean over tasks")
        score_name = "official competition score" if prefix == "comp_eval" else "legacy score"
        ax.set(xlabel="timesteps", ylabel=f"mean episode {score_name}", title=f"evaluation ({prefix}/<task>)")
        ax.legend(fontsize="small")

    return line_chart_png(draw)


def line_chart_png(draw: Callable[[Any], None]) -> bytes:
    """A PNG of one headless matplotlib chart (8 x 4.5 in, a light grid) that `draw(axes)` fills.

    Drawn on a Figure with its own Agg canvas, without pyplot: no display, no global figure registry to clean up,
    and pyplot's import is not paid.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    return png.getvalue()
