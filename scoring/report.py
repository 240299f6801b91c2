"""Official per-episode competition reports and their aggregation over episodes.

The official evaluation function (docs/scoring.md) scores an episode by the TERMINAL
step's raw reward terms: sum_k weight_k * value_k, a boolean counting 1/0, plus the `steps` weight times
a constant 1.0 (not the episode length). Weights come from envs/tasks. A term missing from the raw terms
contributes nothing and is counted in `missing_component_count`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.tasks import KTT_STEPS_WEIGHT, get_task, score_weights


@dataclass(frozen=True)
class EpisodeRecord:
    """What one finished episode leaves: its terminal raw terms, length and end flags."""

    task: str
    seed: int
    """The episode's reset seed."""
    terms: dict[str, float | bool]
    """Raw reward terms of the terminal step (JSON-friendly: bools stay bools, numbers become floats)."""
    length: int
    """Physics steps (env steps at 500 Hz) up to and including the terminal one."""
    terminated: bool
    truncated: bool
    macro_triggers: int | None = None
    """Kick macros fired in the episode (command action mode with a macro); None elsewhere."""


def plain_terms(terms: Mapping[str, Any]) -> dict[str, float | bool]:
    """Raw env terms (np.float32, np.bool_, ...) as plain Python bools and floats."""
    return {k: bool(v) if isinstance(v, (bool, np.bool_)) else float(v) for k, v in terms.items()}


def episode_report(
    terms: Mapping[str, Any], task: str, ktt_steps_weight: float = KTT_STEPS_WEIGHT
) -> dict[str, float]:
    """`comp_<term>` = weight * value for every official term, `comp_total` and `missing_component_count`."""
    report: dict[str, float] = {}
    missing = 0
    for key, weight in score_weights(task, ktt_steps_weight).items():
        if key == "steps":
            value = 1.0
        elif key in terms:
            value = float(terms[key])
        else:
            value = 0.0
            missing += 1
        report[f"comp_{key}"] = weight * value
    report["comp_total"] = sum(report.values())
    report["missing_component_count"] = missing
    return report


def fell(record: EpisodeRecord) -> bool:
    """Whether the robot fell. kick_to_target has no robot_fallen term: its only other terminations are
    success and offside (and NaN physics), so a termination without either counts as a fall."""
    if "robot_fallen" in record.terms:
        return bool(record.terms["robot_fallen"])
    ended_well = bool(record.terms.get(get_task(record.task).success_term)) or bool(record.terms.get("offside"))
    return record.terminated and not ended_well


def aggregate(records: Sequence[EpisodeRecord], ktt_steps_weight: float = KTT_STEPS_WEIGHT) -> dict[str, float]:
    """Summary of one task's episodes: `comp_<term>_mean` per component, comp_total mean and (population)
    std, total missing count, success / offside / fallen rates and mean episode length; with macro counts
    (command mode), `macro_trigger_rate`: the fraction of those episodes with at least one trigger."""
    if not records:
        raise ValueError("no episodes to aggregate")
    task = records[0].task
    if any(r.task != task for r in records):
        raise ValueError("aggregate takes the episodes of one task")
    reports = [episode_report(r.terms, task, ktt_steps_weight) for r in records]
    success_term = get_task(task).success_term
    comp_keys = [key for key in reports[0] if key.startswith("comp_")]
    summary = {f"{key}_mean": float(np.mean([rep[key] for rep in reports])) for key in comp_keys}
    totals = [rep["comp_total"] for rep in reports]
    summary.update({
        "comp_total_std": float(np.std(totals)),
        "missing_component_count": int(sum(rep["missing_component_count"] for rep in reports)),
        "success_rate": float(np.mean([bool(r.terms.get(success_term)) for r in records])),
        "offside_rate": float(np.mean([bool(r.terms.get("offside")) for r in records])),
        "fallen_rate": float(np.mean([fell(r) for r in records])),
        "ep_len_mean": float(np.mean([r.length for r in records])),
        "n_episodes": len(records),
    })
    macro = [r.macro_triggers for r in records if r.macro_triggers is not None]
    if macro:
        summary["macro_trigger_rate"] = float(np.mean([count >= 1 for count in macro]))
    return summary
