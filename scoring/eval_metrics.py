"""The scalar keys a training evaluation logs, named as the seed pipeline named them (docs/scoring.md).

Competition keys (official score, scoring/report.py), unless legacy-only:
  comp_eval/C_overall                 sum over the evaluated tasks of the mean episode score (the seed's
                                      comp_total_sum: not comparable across task sets), first, as the headline
  comp_eval/C_mean                    mean over tasks (comparable across task sets)
  comp_eval/<task>                    mean episode score of a task
  comp_eval/<task>/term_mean/<t>      mean terminal value of the task's diagnostic terms (DIAG_TERMS)
  comp_eval/<task>/{success_rate, offside_rate, fallen_rate, macro_trigger_rate}
  eval_comp/comp_total_sum            = comp_eval/C_overall
  eval_comp/<task>/comp_total, /comp_<term> (weight x value, mean), /missing_component_count (per episode),
  eval_comp/<task>/<t>_mean for the legacy terms, /term_mean/<t>, /success_rate, /offside_rate,
  /macro_trigger_rate
Legacy keys (scoring/legacy.py), unless competition-only:
  eval/S_overall                      mean over tasks of the mean legacy score
  eval/<task>, eval/<task>/<t>_mean, eval/ep_len_mean
`macro_trigger_rate` appears when the episodes ran in command mode (the only mode with kick macros).
"""

from __future__ import annotations

import numpy as np

from envs.tasks import get_task
from scoring.harness import EvalResult
from scoring.legacy import LEGACY_STEPS_WEIGHT, LEGACY_TERMS, legacy_summary

C_OVERALL = "comp_eval/C_overall"
C_MEAN = "comp_eval/C_mean"
S_OVERALL = "eval/S_overall"
DIAG_TERMS = {
    "kick_to_target": ("success", "offside", "distance"),
    "penalty_kick": ("goal_scored", "offside", "ball_hits", "robot_fallen", "ball_blocked", "robot_distance_ball",
                     "ball_vel_twd_goal"),
}
"""Terms whose terminal means the seed logged under `term_mean/`, by task family."""
RATES = ("success_rate", "offside_rate", "fallen_rate", "macro_trigger_rate")


def diag_terms(task: str) -> tuple[str, ...]:
    """The diagnostic terms of a task (its family's DIAG_TERMS)."""
    return DIAG_TERMS["kick_to_target" if get_task(task).success_term == "success" else "penalty_kick"]


def competition_metrics(result: EvalResult) -> dict[str, float]:
    """comp_eval/* and eval_comp/* of one evaluation (headline keys first)."""
    summaries = {task: result.summary(task) for task in result.records}
    out = {C_OVERALL: result.c_overall, C_MEAN: result.c_mean}
    out.update({f"comp_eval/{task}": summary["comp_total_mean"] for task, summary in summaries.items()})
    for task, records in result.records.items():
        summary = summaries[task]
        term_means = {t: float(np.mean([float(r.terms.get(t, 0.0)) for r in records])) for t in diag_terms(task)}
        rates = {rate: summary[rate] for rate in RATES if rate in summary}
        for t, value in term_means.items():
            out[f"comp_eval/{task}/term_mean/{t}"] = value
        out.update({f"comp_eval/{task}/{rate}": value for rate, value in rates.items()})
        prefix = f"eval_comp/{task}"
        out[f"{prefix}/comp_total"] = summary["comp_total_mean"]
        out[f"{prefix}/missing_component_count"] = summary["missing_component_count"] / summary["n_episodes"]
        for key, value in summary.items():
            if key.startswith("comp_") and key.endswith("_mean") and key != "comp_total_mean":
                out[f"{prefix}/{key[:-len('_mean')]}"] = value
        for t in LEGACY_TERMS:
            out[f"{prefix}/{t}_mean"] = float(np.mean([float(r.terms.get(t, 0.0)) for r in records]))
        out.update({f"{prefix}/term_mean/{t}": value for t, value in term_means.items()})
        out.update({f"{prefix}/{rate}": value for rate, value in rates.items() if rate != "fallen_rate"})
    out["eval_comp/comp_total_sum"] = result.c_overall
    return out


def legacy_metrics(result: EvalResult, steps_weight: float = LEGACY_STEPS_WEIGHT) -> dict[str, float]:
    """eval/* of one evaluation, scored with the legacy formula from the same episodes (headline key first)."""
    summaries = {task: legacy_summary(records, steps_weight) for task, records in result.records.items()}
    out = {S_OVERALL: float(np.mean([s["score"] for s in summaries.values()]))}
    for task, summary in summaries.items():
        out[f"eval/{task}"] = summary["score"]
        out.update({f"eval/{task}/{t}_mean": summary[f"{t}_mean"] for t in LEGACY_TERMS})
    lengths = [r.length for records in result.records.values() for r in records]
    out["eval/ep_len_mean"] = float(np.mean(lengths))
    return out
