"""Evaluation reset seeds: the one scheme of every evaluation (scoring/harness.py and rlcore/gym_env.py).

Every evaluation episode gets its own reset seed

    reset_seed = eval_seed * SEED_STRIDE + task_index * TASK_STRIDE + episode     (episode < TASK_STRIDE)

with SEED_STRIDE = 1,000,000 and TASK_STRIDE = 100,000, so no two episodes share a seed across the seed list
and the tasks (docs/scoring.md). A generic gymnasium env (rlcore/gym_env.py) is task index GENERIC_TASK.
"""

from __future__ import annotations

SEED_STRIDE = 1_000_000
TASK_STRIDE = 100_000
MAX_EPISODES = TASK_STRIDE
"""Episodes per eval seed per task must not exceed this (their reset seeds would overlap)."""
MAX_TASKS = SEED_STRIDE // TASK_STRIDE
"""Task indices must stay below this (a larger one would reach the next eval seed's block)."""
GENERIC_TASK = 0
"""The task index of a generic gymnasium env, which has no task table."""


def episode_seed(eval_seed: int, task_index: int, episode: int) -> int:
    """The reset seed of one episode (formula in the module docstring); ValueError outside its ranges."""
    if eval_seed < 0 or not 0 <= task_index < MAX_TASKS or not 0 <= episode < TASK_STRIDE:
        raise ValueError(f"need eval_seed >= 0, 0 <= task_index < {MAX_TASKS} and 0 <= episode < {TASK_STRIDE}, "
                         f"got {eval_seed}, {task_index}, {episode}")
    return eval_seed * SEED_STRIDE + task_index * TASK_STRIDE + episode
