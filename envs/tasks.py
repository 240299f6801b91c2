"""The task table: the three soccer tasks, their one-hots and the official competition score weights.

This is the ONE place the task list and the score weights live. The fixed order (goalie, obstacle, kick)
defines the one-hot positions, evaluation order and seed offsets. The `competition` reward profile
(envs/wrappers) and the scorer (scoring/) both read the weights from here.

Official weights (docs/scoring.md): an episode's score is
`sum(weight[k] * value(terms[k]))` over the terminal step's raw reward terms, with `steps` a constant 1.0.
The kick_to_target steps weight is -0.3 by default; one published copy of the evaluation function says
-0.2, so it is a parameter of `score_weights`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

KTT_STEPS_WEIGHT = -0.3
"""Default kick_to_target `steps` weight (the official function; one public copy says -0.2)."""

_PK_WEIGHTS = MappingProxyType({
    "robot_distance_ball": 0.25,
    "ball_vel_twd_goal": 1.5,
    "goal_scored": 2.5,
    "offside": -3.0,
    "ball_hits": -0.2,
    "robot_fallen": -1.5,
    "ball_blocked": -0.5,
    "steps": -1.0,
})
_KTT_WEIGHTS = MappingProxyType({
    "offside": -1.0,
    "success": 2.0,
    "distance": 0.5,
    "steps": KTT_STEPS_WEIGHT,
})


@dataclass(frozen=True)
class Task:
    """One competition task: env id, checkpoint suffix, raw obs width and official score weights."""

    name: str
    env_id: str
    suffix: str
    obs_dim: int
    index: int
    score_weights: Mapping[str, float]
    """Official weights in the evaluation function's order, including the constant `steps` term."""
    success_term: str
    """The raw reward term that marks a successful episode (a goal, or the ball on the target)."""

    @property
    def one_hot(self) -> np.ndarray:
        """A fresh float32 one-hot of this task in OUR order (goalie, obstacle, kick)."""
        out = np.zeros(len(TASKS), dtype=np.float32)
        out[self.index] = 1.0
        return out

    def __reduce__(self) -> tuple:
        """Pickled by name: a worker process gets the same entry of the one task table (get_task)."""
        return get_task, (self.name,)


TASKS: tuple[Task, ...] = (
    Task("goalie_penalty_kick", "LowerT1GoaliePenaltyKick-v0", "gpk", 45, 0, _PK_WEIGHTS, "goal_scored"),
    Task("obstacle_penalty_kick", "LowerT1ObstaclePenaltyKick-v0", "opk", 54, 1, _PK_WEIGHTS, "goal_scored"),
    Task("kick_to_target", "LowerT1KickToTarget-v0", "ktt", 39, 2, _KTT_WEIGHTS, "success"),
)
TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
_BY_NAME = {t.name: t for t in TASKS}
_BY_OBS_DIM = {t.obs_dim: t for t in TASKS}


def get_task(name: str) -> Task:
    """The task called `name`; ValueError listing the known names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}") from None


def task_for_obs_dim(obs_dim: int) -> Task:
    """The task whose raw observation has `obs_dim` entries (45, 54 or 39 identify the task for certain)."""
    try:
        return _BY_OBS_DIM[obs_dim]
    except KeyError:
        known = ", ".join(f"{t.obs_dim} ({t.name})" for t in TASKS)
        raise ValueError(f"no task has a raw observation of width {obs_dim}; known widths: {known}") from None


def score_weights(task: str, ktt_steps_weight: float = KTT_STEPS_WEIGHT) -> dict[str, float]:
    """Official score weights of `task` (a copy), with the kick_to_target steps weight overridable."""
    weights = dict(get_task(task).score_weights)
    if task == "kick_to_target":
        weights["steps"] = float(ktt_steps_weight)
    return weights


def parse_task_names(text: str) -> list[str]:
    """'all' or comma-separated task names -> names in table order, duplicates dropped; ValueError if unknown."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"no task names in {text!r}; use 'all' or names from: {', '.join(TASK_NAMES)}")
    if items == ["all"]:
        return list(TASK_NAMES)
    wanted = {get_task(name).name for name in items}
    return [name for name in TASK_NAMES if name in wanted]


def parse_task_weights(text: str) -> dict[str, float]:
    """Parse 'goalie_penalty_kick=2,kick_to_target=1' into a weight per task (unnamed tasks get 0).

    ValueError (one line) on an unknown or repeated name, a malformed item, a negative or non-finite
    weight, or weights that are all zero.
    """
    weights = dict.fromkeys(TASK_NAMES, 0.0)
    seen: set[str] = set()
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"task weights must look like 'name=weight,...', got {text!r}")
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"task weight {item!r} must look like 'name=weight'")
        get_task(name)
        if name in seen:
            raise ValueError(f"task {name!r} is given more than once in {text!r}")
        seen.add(name)
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"weight of {name!r} must be a number, got {value!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be finite and >= 0, got {value!r}")
        weights[name] = weight
    if sum(weights.values()) <= 0:
        raise ValueError(f"task weights must not all be zero, got {text!r}")
    return weights


def build_task_list(
    n_envs: int, task_weights: Mapping[str, float] | None = None, tasks: Sequence[str] | None = None
) -> list[str]:
    """Allocate `n_envs` env slots to tasks in proportion to their weights; returns one task name per slot.

    Largest-remainder rounding (ties go to the earlier task), so the result is deterministic. When
    n_envs >= the number of positive-weight tasks, every such task gets at least one slot: a zero-slot
    task takes one from the task holding the most slots. Slots are grouped in table order.
    `tasks` restricts the active tasks (default all); `task_weights` defaults to uniform over them and
    names missing from it weigh 0.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    active = list(TASK_NAMES) if tasks is None else [get_task(name).name for name in tasks]
    active = [name for name in TASK_NAMES if name in active]
    weights = [1.0 if task_weights is None else float(task_weights.get(name, 0.0)) for name in active]
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise ValueError(f"task weights must be finite and >= 0, got {dict(zip(active, weights, strict=True))}")
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"task weights of the active tasks {active} must not all be zero")
    quotas = [n_envs * w / total for w in weights]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(active)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[: n_envs - sum(counts)]:
        counts[i] += 1
    positive = [i for i, w in enumerate(weights) if w > 0]
    if n_envs >= len(positive):
        for i in positive:
            if counts[i] == 0:
                donor = max(range(len(active)), key=lambda j: (counts[j], counts[j] - quotas[j], -j))
                counts[donor] -= 1
                counts[i] += 1
    return [name for name, count in zip(active, counts, strict=True) for _ in range(count)]
