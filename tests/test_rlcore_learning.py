"""Short learning tests on gymnasium tasks (slow; CI runs them). Thresholds from the issue's anchors."""

from __future__ import annotations

import json

import pytest

import train
from rlcore.cliutil import run_cli


def _train_and_score(tmp_path, argv: list[str]) -> float:
    out = tmp_path / "run"
    assert run_cli(train.main, [*argv, "--seed", "0", "--save-dir", str(out), "--log-interval", "5000"]) == 0
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if "eval/mean_reward" in line]
    return last[-1]["eval/mean_reward"]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_offpolicy_learns_pendulum_in_15k_steps(algo: str, tmp_path) -> None:
    score = _train_and_score(tmp_path, ["--env-id", "Pendulum-v1", "--algo", algo, "--total-timesteps", "15000",
                                        "--eval-episodes", "10"])
    assert score >= -250, f"{algo} Pendulum-v1 mean deterministic return {score:.1f} < -250"


@pytest.mark.slow
def test_ppo_learns_inverted_pendulum_in_100k_steps(tmp_path) -> None:
    score = _train_and_score(tmp_path, ["--env-id", "InvertedPendulum-v5", "--algo", "ppo", "--total-timesteps",
                                        "100000", "--eval-episodes", "10"])
    assert score >= 800, f"PPO InvertedPendulum-v5 mean deterministic return {score:.1f} < 800"
