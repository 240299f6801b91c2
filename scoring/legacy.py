"""The seed pipeline's legacy episode score, kept for tooling that reads `eval/*` (docs/scoring.md).

    legacy score = sum_{k in reward_config and terms} reward_config[k] * terms[k]  +  steps_weight * length

with the env's own `reward_config` weights (not the official ones) and a per-step weight times the episode
length. It is NOT the competition score: the weights differ, and the length term rewards falling early when
the step weight is large. We read the env's unmodified class-level `reward_config` (the seed read the copy a
pressure_shot / tight profile had rescaled, so its legacy scores changed with the training reward), which makes
the number comparable across reward profiles.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.tasks import get_task
from scoring.report import EpisodeRecord

LEGACY_STEPS_WEIGHT = -0.05
"""The seed's train_multitask.py default (its eval scripts used -0.001 and -0.5: not comparable)."""
LEGACY_TERMS = ("goal_scored", "success", "ball_hits", "offside", "robot_distance_ball", "distance")
"""Terminal terms whose means the seed logged next to the legacy score (`<task>/<term>_mean`), 0 when absent."""


@functools.cache
def env_reward_config(task: str) -> Mapping[str, float]:
    """The env's own reward weights of a task (read once per process from the registered env class)."""
    env = gym.make(get_task(task).env_id)
    try:
        return dict(env.unwrapped.reward_config)
    finally:
        env.close()


def legacy_score(terms: Mapping[str, Any], reward_config: Mapping[str, float], length: int,
                 steps_weight: float = LEGACY_STEPS_WEIGHT) -> float:
    """The legacy score of one episode from its terminal raw terms and its length in env steps."""
    weighted = sum(weight * float(terms[key]) for key, weight in reward_config.items() if key in terms)
    return float(weighted + steps_weight * length)


def legacy_summary(records: Sequence[EpisodeRecord], steps_weight: float = LEGACY_STEPS_WEIGHT) -> dict[str, float]:
    """One task's legacy aggregate: `score` (mean), `<term>_mean` per LEGACY_TERMS and `ep_len_mean`."""
    if not records:
        raise ValueError("no episodes to summarise")
    config = env_reward_config(records[0].task)
    summary = {"score": float(np.mean([legacy_score(r.terms, config, r.length, steps_weight) for r in records]))}
    for term in LEGACY_TERMS:
        summary[f"{term}_mean"] = float(np.mean([float(r.terms.get(term, 0.0)) for r in records]))
    summary["ep_len_mean"] = float(np.mean([r.length for r in records]))
    return summary
