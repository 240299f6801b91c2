"""The BC trainer: it fits, the normaliser is rlcore's formula, the payload, and one-line CLI errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bc import train as cli
from bc.cloning import BCConfig, bc_policy, load_bc, make_payload, train_bc
from bc.dataset import save_npz
from rlcore.cliutil import run_cli

OBS = 89


def _data(n: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Observations with large offsets and scales, and labels a smooth function of them in [-1, 1]."""
    rng = np.random.default_rng(seed)
    obs = (rng.normal(size=(n, OBS)) * rng.uniform(0.1, 20.0, OBS) + rng.uniform(-50, 50, OBS)).astype(np.float32)
    z = (obs - obs.mean(0)) / obs.std(0)
    actions = np.tanh(z[:, :12] - 0.5 * z[:, 12:24]).astype(np.float32)
    return obs, actions


@pytest.mark.parametrize("algo", ["td3", "sac", "ppo"])
def test_bc_fits_and_logs_validation_loss(algo: str) -> None:
    obs, actions = _data()
    lines: list[str] = []
    cfg = BCConfig(algo=algo, net_arch=(64, 64), epochs=20, batch_size=64, lr=1e-3, normalize_obs=True)
    result = train_bc(obs, actions, cfg, log=lines.append)
    assert len(lines) == 20 and lines[0].startswith("Epoch 001 | loss=") and "| val_loss=" in lines[0]
    assert result.train_losses[-1] < 0.3 * result.train_losses[0]
    assert result.val_losses[-1] < 0.5 * result.val_losses[0]


def test_normaliser_is_fitted_on_the_training_rows_with_rlcore_formula() -> None:
    obs, actions = _data(n=100)
    result = train_bc(obs, actions, BCConfig(net_arch=(8,), epochs=1, normalize_obs=True, val_fraction=0.2), log=None)
    norm = result.normalizer
    assert norm.enabled and norm.clip == 10.0 and norm.epsilon == 1e-8
    assert float(norm.count) == pytest.approx(80 + 1e-4)
    # merged into the initial (mean 0, var 1, count 1e-4) state, as RunningNormalizer does for env batches
    rows = obs.astype(np.float64)[np.sort(np.random.default_rng(0).permutation(100)[20:])]
    w = 80 / (80 + 1e-4)
    np.testing.assert_allclose(norm.mean.numpy(), rows.mean(0) * w, rtol=1e-9)
    identity = train_bc(obs, actions, BCConfig(net_arch=(8,), epochs=1), log=None).normalizer
    assert not identity.enabled


def test_ppo_trains_the_raw_mean_and_deploys_it_clipped() -> None:
    obs, _ = _data(n=256)
    actions = np.ones((256, 12), np.float32)  # labels on the bound: the raw mean may overshoot, the clip fixes it
    cfg = BCConfig(algo="ppo", net_arch=(32,), epochs=30, batch_size=32, lr=3e-3, val_fraction=0.0)
    result = train_bc(obs, actions, cfg, log=None)
    payload = make_payload(result, cfg, action_mode="torque")
    out = bc_policy(payload).predict(obs[:8])
    assert np.all(out <= 1.0) and np.abs(out - 1.0).max() < 0.05
    assert set(payload["state_dict"]) == {"mlp_extractor.policy_net.0.weight", "mlp_extractor.policy_net.0.bias",
                                          "action_net.weight", "action_net.bias"}


def test_payload_contents_and_round_trip(tmp_path) -> None:
    obs, actions = _data(n=64)
    cfg = BCConfig(algo="sac", net_arch=(16, 8), epochs=1, normalize_obs=True)
    result = train_bc(obs, actions, cfg, log=None)
    payload = make_payload(result, cfg, action_mode="pd", dataset="d.npz")
    assert {k.split(".")[0] for k in payload["state_dict"]} == {"latent_pi", "mu"}  # no log_std head
    assert (payload["algo"], payload["net_arch"], payload["activation"], payload["action_mode"]) == \
        ("sac", [16, 8], "relu", "pd")
    assert (payload["obs_dim"], payload["action_dim"], payload["normalize_obs"]) == (89, 12, True)
    with torch.no_grad():
        expected = result.actor.deterministic(result.normalizer(torch.as_tensor(obs))).numpy()
    np.testing.assert_array_equal(bc_policy(payload).predict(obs), expected)
    torch.save({"format": "something else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="is not a BC payload"):
        load_bc(tmp_path / "x.pt")


def test_cli_trains_and_saves(tmp_path, capsys) -> None:
    obs, actions = _data(n=300)
    save_npz(tmp_path / "d.npz", {"observations": obs, "actions": actions, "action_mode": np.array("torque")})
    out = tmp_path / "bc" / "actor.pt"
    code = run_cli(cli.main, ["--dataset", str(tmp_path / "d.npz"), "--out", str(out), "--epochs", "2",
                              "--net-arch", "32,16", "--batch-size", "100", "--algo", "ppo", "--device", "cpu"])
    text = capsys.readouterr().out
    assert code == 0 and "Epoch 002 | loss=" in text and "val_loss=" in text
    payload = load_bc(out)
    assert (payload["algo"], payload["activation"], payload["action_mode"]) == ("ppo", "tanh", "torque")


def _dataset(tmp_path, **arrays) -> str:
    obs, actions = _data(n=40)
    contents = {"observations": obs, "actions": actions, **arrays}
    save_npz(tmp_path / "d.npz", contents)
    return str(tmp_path / "d.npz")


def _nan_obs():
    obs, _ = _data(n=40)
    obs[7, 3] = np.nan
    return obs


@pytest.mark.parametrize("arrays, argv, message", [
    ({"observations": np.zeros((0, 89), np.float32), "actions": np.zeros((0, 12), np.float32)}, [],
     "the dataset is empty (0 samples)"),
    ({"observations": np.zeros((40, 88), np.float32)}, [], "observations are 88-dim, the env's are 89-dim"),
    ({"observations": _nan_obs()}, [], "observations has NaN or inf values (first at row 7)"),
    ({"actions": np.full((40, 12), 2.0, np.float32)}, [], "actions must lie in [-1, 1]"),
    ({}, [], "does not record its action mode: pass --action-mode"),
    ({"action_mode": np.array("pd")}, ["--action-mode", "torque"], "--action-mode torque but the dataset holds pd"),
    ({}, ["--action-mode", "command"], "command actions are 3-dim, the dataset's are 12-dim"),
    ({}, ["--action-mode", "pd", "--net-arch", "64,0"], "--net-arch must be comma-separated positive integers"),
    ({}, ["--action-mode", "pd", "--val-fraction", "1.0"], "val fraction must be in [0, 1)"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, arrays, argv, message) -> None:
    code = run_cli(cli.main, ["--dataset", _dataset(tmp_path, **arrays), "--out", str(tmp_path / "o.pt"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err


def test_cli_missing_dataset(tmp_path, capsys) -> None:
    code = run_cli(cli.main, ["--dataset", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o.pt")])
    assert code == 2 and "dataset not found" in capsys.readouterr().err
