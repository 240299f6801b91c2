"""The rollout recorder: real transitions, clean labels with noisy executed actions, policy sources, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bc import record as cli
from bc.dataset import load_demos
from bc.rollouts import RecordOptions, record_rollouts, rollout_arrays
from bc.stand import StandController
from rlcore.algos import build_algorithm
from rlcore.checkpoint import save_checkpoint
from rlcore.cliutil import run_cli
from rlcore.config import NetConfig, TD3Config
from workflow.policies import load_policy, scripted_policy

TASK = "goalie_penalty_kick"


def test_transitions_labels_and_noise() -> None:
    options = RecordOptions(noise=0.1, max_episode_steps=25, batch_size=2)
    episodes = record_rollouts(StandController(), [TASK], [3, 4], options)
    data = rollout_arrays(episodes, options, "stand")
    n = 50
    assert data["observations"].shape == (n, 89) and data["actions"].shape == (n, 12)
    assert data["next_observations"].shape == (n, 89) and data["rewards"].shape == (n,)
    np.testing.assert_array_equal(data["task_one_hot"], np.tile([1, 0, 0], (n, 1)))
    np.testing.assert_allclose(data["actions"], StandController()(data["observations"]), atol=1e-6)  # clean labels
    noise = data["executed_actions"] - data["actions"]
    assert 0.07 < noise.std() < 0.13
    same_episode = data["episode_index"][1:] == data["episode_index"][:-1]
    np.testing.assert_array_equal(data["next_observations"][:-1][same_episode], data["observations"][1:][same_episode])
    assert data["truncated"].nonzero()[0].tolist() == [24, 49] and not data["terminated"].any()
    assert data["episode_seeds"].tolist() == [3, 4] and data["episode_lengths"].tolist() == [25, 25]
    # one episode's noise does not depend on the batch it ran in
    alone = record_rollouts(StandController(), [TASK], [4], RecordOptions(noise=0.1, max_episode_steps=25))
    np.testing.assert_array_equal(np.stack(alone[0].executed), data["executed_actions"][25:])


def test_without_noise_the_executed_action_is_the_label() -> None:
    options = RecordOptions(max_episode_steps=5)
    data = rollout_arrays(record_rollouts(StandController(), [TASK], [0], options), options, "stand")
    np.testing.assert_array_equal(data["executed_actions"], data["actions"])


def _checkpoint(path, action_mode: str) -> None:
    low, high = -np.ones(12, np.float32), np.ones(12, np.float32)
    cfg = TD3Config(net=NetConfig(net_arch=(8,)))
    algo = build_algorithm("td3", 89, low, high, cfg)
    save_checkpoint(path, algo_name="td3", config=cfg, algo_state=algo.state_dict(), obs_shape=(89,),
                    action_low=low, action_high=high, runner_state={}, metadata={"action_mode": action_mode})


def test_policy_sources(tmp_path) -> None:
    loaded = scripted_policy("stand", action_mode="pd")
    assert isinstance(loaded.policy, StandController) and "pd" in loaded.label
    assert loaded.settings == {"action_mode": "pd"}
    _checkpoint(tmp_path / "checkpoint.pt", "torque")
    loaded = load_policy(str(tmp_path / "checkpoint.pt"))
    assert loaded.policy(np.zeros((2, 89), np.float32)).shape == (2, 12) and loaded.kind == "checkpoint"
    assert loaded.settings == {"action_mode": "torque", "action_repeat": 1} and "td3 @ 0 steps" in loaded.label
    with pytest.raises(ValueError, match="no such policy file"):
        load_policy(str(tmp_path / "model.zip"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a policy file"):
        load_policy(str(tmp_path / "notes.txt"))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_policy(str(tmp_path / "other.pt"))


def test_cli_records_a_file_bc_and_prefill_can_read(tmp_path, capsys) -> None:
    out = tmp_path / "demos.npz"
    code = run_cli(cli.main, ["--tasks", "obstacle_penalty_kick", "--seeds", "7", "--max-episode-steps", "10",
                              "--out", str(out)])
    assert code == 0 and "wrote 10 transitions of 1 episodes" in capsys.readouterr().out
    demos = load_demos(out, obs_dim=89, act_dim=12)
    assert demos.has_transitions and demos.action_mode == "torque" and demos.reward_profile == "competition"


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "1,x"], "--seeds must be comma-separated integers"),
    (["--seeds", "1,1"], "--seeds must be distinct"),
    (["--noise", "-0.1"], "noise must be in [0, 1]"),
    (["--tasks", "basketball"], "unknown task 'basketball'"),
    (["--policy", "missing.pt"], "no such policy file: missing.pt"),
    (["--policy", "stand", "--action-mode", "pd", "--max-episode-steps", "0"], "--max-episode-steps must be >= 1"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message) -> None:
    code = run_cli(cli.main, [*argv, "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
