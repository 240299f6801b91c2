"""The model files beside a run, warm starts from zips in train.py, zips in evaluate.py, and bad input
(one line on stderr, exit code 2). Fast: zips of untrained networks, Pendulum or stubbed evaluations."""

from __future__ import annotations

import dataclasses
import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import TD3

import evaluate
import submission.__main__ as export_cli
import train
import workflow.builders
import workflow.training
from envs.preprocess import OBS_DIM
from envs.tasks import TASK_NAMES
from rlcore.algos import build_algorithm
from rlcore.cliutil import run_cli
from rlcore.config import NetConfig
from rlcore.export import read_sb3_zip
from rlcore.registry import algorithm_spec
from scoring.harness import EvalResult
from scoring.report import EpisodeRecord
from submission import MODEL_FILES, NotExportable, env_spaces, preprocessor_source, read_meta, write_model

PENDULUM = {"env_id": "Pendulum-v1", "n_envs": 1}
SOCCER = {"tasks": list(TASK_NAMES), "action_mode": "torque", "action_repeat": 1}


def untrained(name: str, obs_dim: int, low: np.ndarray, high: np.ndarray, *, normalize: bool = False, seed: int = 0):
    cfg = dataclasses.replace(algorithm_spec(name).config(), net=NetConfig(net_arch=(16, 16)))
    cfg = dataclasses.replace(cfg, obs_norm=dataclasses.replace(cfg.obs_norm, enabled=normalize))
    torch.manual_seed(seed)
    algo = build_algorithm(name, obs_dim, low, high, cfg)
    if normalize:
        algo.normalizer.update(torch.randn(50, obs_dim, dtype=torch.float64) * 3 + 1)
    return algo


def pendulum_zip(tmp_path, name: str = "td3", *, normalize: bool = False, kind: str = "final"):
    """A zip (+ meta + bundle) of an untrained policy for Pendulum-v1, as train.py writes them."""
    low, high = np.array([-2.0], np.float32), np.array([2.0], np.float32)
    algo = untrained(name, 3, low, high, normalize=normalize)
    save_dir = tmp_path / f"{name}_{'norm' if normalize else 'raw'}"
    path = write_model(save_dir, kind, algo, PENDULUM, action_low=low, action_high=high, timesteps=77,
                       scores={"eval/mean_reward": -1.0})
    return path, algo


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_soccer_bundle_files(tmp_path):
    low, high = env_spaces(task=TASK_NAMES[0])[1:]
    algo = untrained("sac", OBS_DIM, -np.ones(12, np.float32), np.ones(12, np.float32), normalize=True)
    path = write_model(tmp_path, "best", algo, SOCCER, action_low=low, action_high=high, timesteps=5,
                       scores={"comp_eval/C_overall": -5.0})
    zip_name, folder_name = MODEL_FILES["best"]
    folder = tmp_path / folder_name
    assert path == tmp_path / zip_name == tmp_path / "best_model_competition.zip"
    assert sorted(p.name for p in folder.iterdir()) == ["SUBMIT.md", "meta.json", "model.zip", "preprocessor.py"]
    assert (folder / "model.zip").read_bytes() == path.read_bytes()
    meta = read_meta(path)
    assert meta == {**read_meta(folder / "model.zip"), "model": zip_name}
    assert (meta["algo"], meta["action_mode"], meta["timesteps"], meta["kind"]) == ("sac", "torque", 5, "best")
    assert meta["normalizer"] == json.loads(json.dumps(algo.normalizer.stats()))
    assert meta["evaluation"] == {"comp_eval/C_overall": -5.0} and meta["versions"]["torch"]
    assert (folder / "preprocessor.py").read_text() == preprocessor_source(algo.normalizer.stats())
    submit = (folder / "SUBMIT.md").read_text()
    assert 'algorithm="SAC"' in submit and 'preprocessor_class="preprocessor.py"' in submit
    np.testing.assert_array_equal(read_sb3_zip(path).action_low, low)  # the raw torque bounds
    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (folder / "model.zip").write_bytes(bytes(tampered))  # other bytes than meta.json describes
    with pytest.raises(ValueError, match="sha256 differs"):
        read_meta(folder / "model.zip")


def test_generic_bundle_has_no_preprocessor_and_states_the_normalisation(tmp_path):
    path, _ = pendulum_zip(tmp_path, "ppo", normalize=True)
    folder = path.parent / MODEL_FILES["final"][1]
    assert sorted(p.name for p in folder.iterdir()) == ["SUBMIT.md", "meta.json", "model.zip"]
    assert "clip((obs - mean) / sqrt(var + epsilon), -clip, clip)" in (folder / "SUBMIT.md").read_text()


def test_only_the_torque_action_mode_exports(tmp_path):
    algo = untrained("td3", OBS_DIM, -np.ones(12, np.float32), np.ones(12, np.float32))
    with pytest.raises(NotExportable, match="TorchScript") as info:
        write_model(tmp_path, "final", algo, {**SOCCER, "action_mode": "pd"}, action_low=-np.ones(12),
                    action_high=np.ones(12), timesteps=0, scores={})
    assert "\n" not in str(info.value) and "--action-mode torque" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def _stub_result(*args, **kwargs) -> EvalResult:
    """An evaluation result without running episodes (train.py's soccer evaluate is stubbed)."""
    return EvalResult({"kick_to_target": [EpisodeRecord("kick_to_target", 0, {}, 10, False, True)]})


def test_train_with_pd_actions_writes_torchscript_not_a_zip(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(workflow.builders, "evaluate_soccer", _stub_result)
    argv = ["--algo", "td3", "--tasks", "kick_to_target", "--n-envs", "1", "--action-mode", "pd",
            "--total-timesteps", "20", "--learning-starts", "10", "--net-arch", "8", "--save-dir", str(tmp_path)]
    assert run_cli(train.main, argv) == 0
    assert f"final model: {tmp_path / 'final_model.pt'}" in capsys.readouterr().out
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "final_model.zip").exists()
    assert (tmp_path / "best_model_ktt.pt").is_file()  # single-task best, in the pd mode's format
    assert (tmp_path / "submission_final_torchscript" / "model.pt").is_file()
    assert run_cli(export_cli.main, [str(tmp_path / "checkpoint.pt")]) == 2  # a zip on request: no
    assert "action mode 'pd' does not export to an SB3 zip" in one_error_line(capsys)
    assert not (tmp_path / "final_model.zip").exists()


def test_export_cli_rewrites_what_train_wrote(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["--env-id", "Pendulum-v1", "--algo", "sac", "--total-timesteps", "30", "--learning-starts", "10",
            "--normalize-obs", "--eval-episodes", "1", "--save-dir", str(run)]
    assert run_cli(train.main, argv) == 0
    assert run_cli(export_cli.main, [str(run / "checkpoint.pt"), "--kind", "best", "--save-dir", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    final, best = read_meta(run / "final_model.zip"), read_meta(tmp_path / "best_model_competition.zip")
    assert best["model_sha256"] == final["model_sha256"]  # the same bytes, from the checkpoint alone
    assert (best["normalizer"], best["evaluation"]) == (final["normalizer"], final["evaluation"])


class _SpyRunner(workflow.training.Runner):
    """Records what train.py hands the runner."""

    seen: dict = {}

    def __init__(self, algo, env, run, **kwargs) -> None:
        _SpyRunner.seen = {"run": run, "resume": kwargs.get("resume"), "stats": algo.normalizer.stats()}
        super().__init__(algo, env, run, **kwargs)


@pytest.mark.parametrize("name", ["td3", "ppo"])
def test_train_warm_starts_from_a_zip(name, tmp_path, monkeypatch, capsys):
    path, original = pendulum_zip(tmp_path, name, normalize=name == "ppo")
    monkeypatch.setattr(workflow.training, "Runner", _SpyRunner)
    run = tmp_path / "warm"
    budget = ["--learning-starts", "100"] if name == "td3" else ["--n-steps", "500"]  # no update happens
    argv = ["--env-id", "Pendulum-v1", "--algo", name, "--resume-model", str(path), "--total-timesteps", "40",
            "--eval-episodes", "1", "--save-dir", str(run), *budget]
    assert run_cli(train.main, argv) == 0
    out = capsys.readouterr().out
    assert f"warm start from {path}" in out
    assert "An SB3 zip holds no optimiser state, observation normaliser or replay buffer" in out
    assert "timestep 0, without the random warm-up" in out
    seen = _SpyRunner.seen
    assert seen["run"].random_warmup is False and seen["resume"] is None
    if name == "ppo":  # the statistics saved beside the zip were loaded
        assert "the normaliser from the statistics saved beside the zip" in out
        assert seen["stats"] == json.loads(json.dumps(original.normalizer.stats()))
    else:  # no update ran: the run's final zip holds the zip's weights
        obs = np.random.default_rng(0).uniform(-2, 2, (100, 3)).astype(np.float32)
        before, after = TD3.load(path, device="cpu"), TD3.load(run / "final_model.zip", device="cpu")
        np.testing.assert_array_equal(before.predict(obs)[0], after.predict(obs)[0])


def test_bad_zips_are_one_line_errors(tmp_path, capsys):
    td3, _ = pendulum_zip(tmp_path, "td3")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(td3.read_bytes()[:300])
    soccer = write_model(tmp_path / "soccer", "final", untrained("td3", OBS_DIM, -np.ones(12), np.ones(12)), SOCCER,
                         action_low=-np.ones(12), action_high=np.ones(12), timesteps=0, scores={})
    other_meta = tmp_path / "other"
    other_meta.mkdir()
    shutil.copy(td3, other_meta / "final_model.zip")
    shutil.copy(pendulum_zip(tmp_path, "sac")[0].with_suffix(".meta.json"), other_meta / "final_model.meta.json")
    pendulum = ["--env-id", "Pendulum-v1"]
    cases = [
        (train.main, ["--algo", "sac", "--resume-model", str(td3), *pendulum], "holds a TD3 model, but --algo is sac"),
        (train.main, ["--algo", "td3", "--resume-model", str(truncated), *pendulum], "cannot read SB3 zip"),
        (train.main, ["--algo", "td3", "--resume-model", str(soccer), *pendulum],
         "the zip's observations have shape (89,), the env's (3,)"),
        (train.main, ["--algo", "td3", "--resume-model", str(td3), "--net-arch", "8", *pendulum],
         "drop --net-arch/--activation"),
        (train.main, ["--algo", "td3", "--resume-model", str(td3), "--normalize-obs", *pendulum],
         "no normaliser statistics beside it"),
        (evaluate.main, ["--model", str(truncated), *pendulum], "--model: cannot read SB3 zip"),
        (evaluate.main, ["--model", str(td3)], "--model: the zip's observations have shape (3,), the env's (89,)"),
        (evaluate.main, ["--model", str(soccer)], "--model: the zip's action bounds"),
        (evaluate.main, ["--model", str(other_meta / "final_model.zip"), *pendulum], "sha256 differs"),
    ]
    for main, argv, message in cases:
        save_dir = tmp_path / "never"
        extra = ["--save-dir", str(save_dir)] if main is train.main else []
        assert run_cli(main, [*argv, *extra]) == 2, argv
        assert message in one_error_line(capsys), argv
        assert not save_dir.exists()


def test_zip_saved_by_sb3_evaluates_without_normalisation_with_a_note(tmp_path, capsys):
    TD3("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"net_arch": [8]}, device="cpu").save(tmp_path / "s.zip")
    argv = ["--model", str(tmp_path / "s.zip"), "--env-id", "Pendulum-v1", "--episodes", "1"]
    assert run_cli(evaluate.main, argv) == 0
    out = capsys.readouterr().out
    assert "note: no statistics beside" in out and "without observation normalisation" in out
    assert "td3 zip @ 0 steps, 1 episodes, mean return" in out
