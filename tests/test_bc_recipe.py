"""The stand-controller BC recipe in miniature (docs/cloning.md), through the CLIs, with its negative control.

Demos with noise on the executed action (labels clean) give a BC policy that stands; clean demos give one that
falls within a few hundred steps (compounding error). Episodes are cut at 1000 steps to stay short. The
miniature sees only two layouts per task, so one fall on an unseen obstacle layout is tolerated; the full recipe
(10 episodes of 5000 steps) stands on all of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from bc import record, train
from scoring.harness import evaluate
from workflow.policies import load_policy

TASKS = ["goalie_penalty_kick", "obstacle_penalty_kick"]
STEPS = 1000


def _bc_episode_lengths(tmp_path, noise: float) -> list[int]:
    demos, actor = tmp_path / f"demos_{noise}.npz", tmp_path / f"bc_{noise}.pt"
    assert record.main(["--policy", "stand", "--tasks", ",".join(TASKS), "--seeds", "10,11", "--noise", str(noise),
                        "--max-episode-steps", str(STEPS), "--out", str(demos)]) == 0
    assert train.main(["--dataset", str(demos), "--out", str(actor), "--epochs", "40", "--batch-size", "256",
                       "--lr", "1e-3", "--normalize-obs", "--device", "cpu"]) == 0
    policy = load_policy(str(actor)).policy
    result = evaluate(policy, TASKS, 1, [0, 1, 2], max_episode_steps=STEPS)
    return [r.length for records in result.records.values() for r in records]


@pytest.mark.slow
def test_noisy_demos_stand_and_clean_demos_fall(tmp_path) -> None:
    noisy = _bc_episode_lengths(tmp_path, 0.1)
    clean = _bc_episode_lengths(tmp_path, 0.0)
    assert sum(length == STEPS for length in noisy) >= len(noisy) - 1, noisy
    assert np.mean(noisy) >= 0.9 * STEPS, noisy
    assert max(clean) < 0.6 * STEPS, clean
