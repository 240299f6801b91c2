"""The one evaluation-seed scheme (rlcore/seeds.py): distinct reset seeds, its ranges, and both paths using it."""

import numpy as np
import pytest

from envs.tasks import TASKS
from rlcore.gym_env import evaluate_over_seeds
from rlcore.seeds import GENERIC_TASK, MAX_EPISODES, episode_seed


def test_reset_seeds_are_distinct_across_seeds_tasks_and_episodes():
    assert episode_seed(0, 0, 0) == 0
    assert episode_seed(3, 2, 7) == 3 * 1_000_000 + 2 * 100_000 + 7
    seeds = [episode_seed(s, t.index, e) for s in range(6) for t in TASKS for e in range(2000)]
    assert len(set(seeds)) == len(seeds)
    for bad in ((0, 0, MAX_EPISODES), (-1, 0, 0), (0, 10, 0), (0, -1, 0)):
        with pytest.raises(ValueError):
            episode_seed(*bad)


def test_the_generic_gym_path_is_task_zero_of_the_same_scheme():
    def act(obs):
        return np.zeros((len(obs), 1), np.float32)

    records = evaluate_over_seeds("Pendulum-v1", act, 2, [0, 3])
    assert [r["seed"] for r in records] == [episode_seed(s, GENERIC_TASK, e) for s in (0, 3) for e in range(2)]
    assert [r["seed"] for r in records] == [0, 1, 3_000_000, 3_000_001]
    with pytest.raises(ValueError, match=f"episodes must be in \\[1, {MAX_EPISODES}\\]"):
        evaluate_over_seeds("Pendulum-v1", act, MAX_EPISODES + 1, [0])
