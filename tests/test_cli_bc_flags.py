"""train.py's behaviour-cloning flags: bad combinations and bad files are one-line errors, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

import bc.train as bc_train
import train
from rlcore.cliutil import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bc")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 89)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(64, 12)).astype(np.float32)
    np.savez(root / "demos.npz", observations=obs, actions=actions)
    np.savez(root / "empty.npz", observations=np.zeros((0, 89), np.float32), actions=np.zeros((0, 12), np.float32))
    bad = obs.copy()
    bad[3, 5] = np.nan
    np.savez(root / "nan.npz", observations=bad, actions=actions)
    np.savez(root / "narrow.npz", observations=obs[:, :45], actions=actions)
    assert run_cli(bc_train.main, ["--dataset", str(root / "demos.npz"), "--out", str(root / "bc_small.pt"),
                                   "--net-arch", "32,32", "--epochs", "1", "--device", "cpu",
                                   "--action-mode", "torque"]) == 0
    return root


@pytest.mark.parametrize("extra, message", [
    (["--bc-replay-fraction", "1.5", "--bc-replay-dataset", "{root}/demos.npz"], "--bc-replay-fraction"),
    (["--bc-replay-fraction", "0.2"], "--bc-replay-fraction"),
    (["--freeze-bc-layers", "1"], "--freeze-bc-layers"),
    (["--bc-init-std", "0"], "--bc-init-std must be finite and > 0"),
    (["--bc-weights", "{root}/missing.pt"], "no such file"),
    (["--bc-weights", "{root}/bc_small.pt"], "net_arch"),
    (["--bc-replay-dataset", "{root}/empty.npz", "--bc-replay-fraction", "0.2"], "empty"),
    (["--bc-replay-dataset", "{root}/nan.npz", "--bc-replay-fraction", "0.2"], "NaN"),
    (["--bc-replay-dataset", "{root}/narrow.npz", "--bc-replay-fraction", "0.2"], "89"),
])
def test_bad_bc_flags(files, extra, message, tmp_path, capsys) -> None:
    argv = ["--algo", "td3", "--tasks", "kick_to_target", "--n-envs", "1", "--total-timesteps", "100",
            "--save-dir", str(tmp_path / "out"), *[a.format(root=files) for a in extra]]
    assert run_cli(train.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("algo", ["td3", "ppo"])
def test_bc_start_freezes_and_anchors_through_train(files, tmp_path, capsys, algo: str) -> None:
    """train.py applies --freeze-bc-layers and the anchor for every algorithm, from the BC actor."""
    import torch

    bc_file = tmp_path / f"bc_{algo}.pt"
    assert run_cli(bc_train.main, ["--dataset", str(files / "demos.npz"), "--out", str(bc_file), "--algo", algo,
                                   "--net-arch", "32,32", "--epochs", "1", "--device", "cpu",
                                   "--action-mode", "torque"]) == 0
    run = tmp_path / "run"
    argv = ["--algo", algo, "--net-arch", "32,32", "--bc-weights", str(bc_file), "--freeze-bc-layers", "1",
            "--freeze-until-step", "100000", "--tasks", "kick_to_target", "--n-envs", "1", "--total-timesteps",
            "64", "--eval-freq", "0", "--eval-episodes", "1", "--eval-seeds", "0", "--max-episode-steps", "50",
            "--save-dir", str(run)]
    argv += ["--n-steps", "32", "--batch-size", "16"] if algo == "ppo" else ["--learning-starts", "16"]
    assert run_cli(train.main, argv) == 0
    assert "froze 1" in capsys.readouterr().out
    state = torch.load(run / "checkpoint.pt", weights_only=False)["algo_state"]
    assert state["freeze"] is not None and state["freeze"]["n_layers"] == 1
    assert state["anchor"] is not None  # every algorithm anchors a BC start by default
