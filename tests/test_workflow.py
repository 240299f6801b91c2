"""The workflow layer: typed options that are the flags and the YAML keys, options applied to each algorithm's
config by the registry's facts, the programmatic entry point, and the one policy loader on every file kind
(a TorchScript torque module plays as the checkpoint it was exported from; bc.record reads a zip as
evaluate.py does)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bc import record
from bc.dataset import load_demos
from envs.preprocess import OBS_DIM
from envs.tasks import TASK_NAMES
from rlcore.algos import build_algorithm
from rlcore.cliutil import UsageError, run_cli
from rlcore.config import NetConfig, ObsNormConfig
from rlcore.registry import ALGORITHM_SPECS
from scoring.harness import evaluate
from submission import env_spaces, write_model
from submission.torchscript import torchscript_paths, write_torchscript
from workflow.builders import algo_config
from workflow.options import OPTION_FIELDS, TrainOptions, build_parser, check_options
from workflow.policies import load_policy
from workflow.presets import base_config
from workflow.training import train

TASK = TASK_NAMES[0]
SOCCER = {"tasks": [TASK], "action_mode": "torque", "action_repeat": 1}


def test_every_option_is_a_flag_and_a_config_key() -> None:
    parser = build_parser()
    dests = {a.dest for a in parser._actions if a.option_strings} - {"help", "recipe", "config"}
    assert dests == set(OPTION_FIELDS)
    args = parser.parse_args(["--net-arch", "64,32", "--eval-seeds", "3,1", "--command-limits", "0.5,0.2,1"])
    assert args.net_arch == (64, 32) and args.eval_seeds == (3, 1) and args.command_limits == (0.5, 0.2, 1.0)


def test_help_shows_the_real_defaults_per_algorithm() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "--lr LR learning rate (default: soccer 0.0003; --env-id TD3 0.001, SAC 0.0003, PPO 0.0003)" in text
    assert "(default: soccer 256; --env-id TD3 256, SAC 256, PPO 64)" in text  # --batch-size
    assert "TD3/SAC: Transitions kept in the ring" in text and "(default: soccer 500000; --env-id 1000000)" in text


@pytest.mark.parametrize("flag, value, algo, message", [
    ("tau", 0.1, "ppo", "--tau applies to TD3 and SAC, not PPO"),
    ("n_steps", 8, "sac", "--n-steps applies to PPO only"),
    ("ent_coef", 0.1, "td3", "--ent-coef applies to SAC and PPO, not TD3"),
    ("ent_coef_auto", True, "ppo", "--ent-coef-auto applies to SAC only"),
    ("action_noise_sigma", 0.1, "sac", "--action-noise-sigma applies to TD3 only"),
])
def test_an_option_that_the_algorithms_config_lacks_does_not_apply(flag, value, algo, message) -> None:
    options = TrainOptions(algo=algo, **{flag: value}).with_defaults()
    with pytest.raises(UsageError, match=message):
        check_options(options)


def test_algorithm_options_land_on_each_configs_own_fields() -> None:
    for algo in ALGORITHM_SPECS:
        options = TrainOptions(algo=algo, batch_size=32, net_arch=(8,), normalize_obs=True, gamma=0.9)
        cfg = algo_config(options, base_config(algo, soccer=True))
        batch = cfg.batch_size if ALGORITHM_SPECS[algo].on_policy else cfg.buffer.batch_size
        assert (batch, cfg.net.net_arch, cfg.obs_norm.enabled, cfg.gamma) == (32, (8,), True, 0.9)
    with pytest.raises(UsageError, match="gamma"):
        algo_config(TrainOptions(gamma=1.5), base_config("td3", soccer=False))


def test_train_is_a_function_of_its_options(tmp_path, capsys) -> None:
    options = TrainOptions(env_id="Pendulum-v1", total_timesteps=300, learning_starts=100, eval_episodes=1,
                           device="cpu", save_dir=str(tmp_path / "run"), log_interval=100)
    result = train(options)
    assert result.timesteps == 300 and result.final_model == tmp_path / "run" / "final_model.zip"
    assert result.final_model.is_file() and result.checkpoint.is_file()
    assert "eval/mean_reward" in result.scores and any("final evaluation" in line for line in result.summary())


def _untrained_td3(normalize: bool) -> object:
    torch.manual_seed(0)
    cfg = dataclasses.replace(ALGORITHM_SPECS["td3"].config(), net=NetConfig(net_arch=(16,)),
                              obs_norm=ObsNormConfig(enabled=normalize))
    algo = build_algorithm("td3", OBS_DIM, -np.ones(12, np.float32), np.ones(12, np.float32), cfg)
    if normalize:
        algo.normalizer.update(torch.randn(50, OBS_DIM, dtype=torch.float64) * 3 + 1)
    return algo


def _records(policy, episodes: int = 3):
    result = evaluate(policy, [TASK], episodes, [0], max_episode_steps=30, sim="fast", batch_size=2)
    return result.records[TASK]


def test_a_torchscript_module_plays_as_the_policy_it_was_exported_from(tmp_path) -> None:
    algo = _untrained_td3(normalize=True)
    _, low, high = env_spaces(task=TASK)
    write_torchscript(tmp_path, "final", algo.policy, SOCCER, algo="td3", action_low=low, action_high=high,
                      timesteps=0, scores={})
    module_path, folder = torchscript_paths(tmp_path, "final")
    expected = _records(lambda obs: algo.policy.predict(obs))
    for path in (module_path, folder / "model.pt"):  # torques in N·m, and the platform's [-1, 1] units
        loaded = load_policy(str(path))
        assert loaded.kind == "torchscript" and loaded.settings == {"action_mode": "torque", "action_repeat": 1}
        got = _records(loaded.policy)  # 3 episodes on 2 envs: an env's second episode reuses its module row
        assert [r.length for r in got] == [r.length for r in expected]
        for a, b in zip(got, expected, strict=True):
            assert a.terms["robot_distance_ball"] == pytest.approx(b.terms["robot_distance_ball"], abs=1e-4)


def test_bc_record_reads_a_zip_as_evaluate_does(tmp_path, capsys) -> None:
    algo = _untrained_td3(normalize=True)
    _, low, high = env_spaces(task=TASK)
    zip_path = write_model(tmp_path, "final", algo, SOCCER, action_low=low, action_high=high, timesteps=5, scores={})
    out = tmp_path / "demos.npz"
    argv = ["--policy", str(zip_path), "--tasks", TASK, "--seeds", "5", "--noise", "0", "--max-episode-steps",
            "10", "--out", str(out)]
    assert run_cli(record.main, argv) == 0, capsys.readouterr().err
    demos = load_demos(out, obs_dim=OBS_DIM, act_dim=12)
    zip_policy = load_policy(str(zip_path)).policy
    np.testing.assert_allclose(demos.actions, zip_policy(demos.observations), atol=1e-6)
    assert run_cli(record.main, [*argv, "--action-mode", "pd"]) == 2
    assert "acts with --action-mode torque; got --action-mode pd" in capsys.readouterr().err


def test_the_exporter_names_a_model_file_it_is_given_instead_of_a_checkpoint(tmp_path, capsys) -> None:
    from submission import __main__ as export_cli

    algo = _untrained_td3(normalize=False)
    _, low, high = env_spaces(task=TASK)
    zip_path = write_model(tmp_path, "final", algo, SOCCER, action_low=low, action_high=high, timesteps=5, scores={})
    assert run_cli(export_cli.main, [str(zip_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is an SB3 zip, already a model" in err
