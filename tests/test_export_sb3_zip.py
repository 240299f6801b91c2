"""rlcore.export against real Stable-Baselines3: our zips load in SB3 and predict our actions; SB3's zips
read into our networks; what the zip holds is portable; bad files are one-line ValueErrors."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC, TD3

from rlcore.algos import build_algorithm
from rlcore.config import NetConfig
from rlcore.export import (
    check_compatible,
    export_sb3_zip,
    load_zip_weights,
    policy_from_zip,
    read_sb3_zip,
    sb3_policy_state,
)
from rlcore.registry import algorithm_spec

SB3 = {"td3": TD3, "sac": SAC, "ppo": PPO}
ALGOS = ("td3", "sac", "ppo")
OBS_DIM = 7
LOW = np.array([-45.0, -10.0, -30.0], np.float32)  # one asymmetric bound exercises the affine map
HIGH = np.array([45.0, 45.0, 30.0], np.float32)
UNIT = np.ones(3, np.float32)


def random_algo(name: str, activation: str = "elu", seed: int = 0, **cfg_changes):
    """An algorithm acting in [-1, 1] with large random weights (PPO's mean then leaves [-1, 1] often)."""
    cfg = dataclasses.replace(algorithm_spec(name).config(), net=NetConfig(net_arch=(32, 16), activation=activation),
                              **cfg_changes)
    algo = build_algorithm(name, OBS_DIM, -UNIT, UNIT, cfg)
    torch.manual_seed(seed)
    modules = [algo.actor] if name == "ppo" else [algo.actor, algo.critic, algo.critic_target]
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.normal_(0.0, 0.5)
    return algo


def export(algo, path: Path, low: np.ndarray = LOW, high: np.ndarray = HIGH) -> Path:
    export_sb3_zip(algo, path, obs_low=np.full(OBS_DIM, -np.inf), obs_high=np.full(OBS_DIM, np.inf),
                   action_low=low, action_high=high, num_timesteps=123)
    return path


def in_env_units(unit_actions: np.ndarray, low: np.ndarray = LOW, high: np.ndarray = HIGH) -> np.ndarray:
    return (high + low) / 2 + (high - low) / 2 * unit_actions


def observations(n: int = 1000, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, (n, OBS_DIM)).astype(np.float32)


@pytest.mark.parametrize("name", ALGOS)
def test_sb3_loads_our_zip_and_predicts_our_actions(name, tmp_path, recwarn):
    algo = random_algo(name)
    model = SB3[name].load(export(algo, tmp_path / "m.zip"), device="cpu")
    assert not [w for w in recwarn if "stable_baselines3" in str(w.filename)]
    obs = observations()
    ours = in_env_units(algo.policy.predict(obs))
    theirs, _ = model.predict(obs, deterministic=True)
    assert np.abs(theirs - ours).max() <= 1e-4 * (HIGH - LOW).min()
    single, _ = model.predict(obs[0].astype(np.float64), deterministic=True)  # (D,) float64 input
    np.testing.assert_allclose(single, ours[0], atol=1e-4 * (HIGH - LOW).min())
    np.testing.assert_array_equal(model.action_space.low, LOW)
    assert model.num_timesteps == 123
    if name == "ppo":
        assert 0.05 < np.mean(np.abs(algo.policy.predict(obs)) == 1.0) < 0.95  # clipped and unclipped entries


def test_sb3_restores_the_hyper_parameters_and_the_entropy_coefficient(tmp_path):
    auto = random_algo("sac")
    with torch.no_grad():
        auto.log_alpha.fill_(-1.5)
    model = SAC.load(export(auto, tmp_path / "auto.zip"), device="cpu")
    assert model.log_ent_coef.item() == pytest.approx(-1.5)
    assert model.target_entropy == auto.target_entropy and model.gamma == auto.cfg.gamma
    fixed = random_algo("sac", ent_coef=0.05)
    model = SAC.load(export(fixed, tmp_path / "fixed.zip"), device="cpu")
    assert model.ent_coef_tensor.item() == pytest.approx(0.05)
    ppo = random_algo("ppo", n_steps=128, n_epochs=3)
    model = PPO.load(export(ppo, tmp_path / "ppo.zip"), device="cpu")
    assert (model.n_steps, model.n_epochs, model.clip_range(1.0)) == (128, 3, ppo.cfg.clip_range)
    expected_std = (HIGH - LOW) / 2 * ppo.actor.log_std.detach().exp().numpy()  # the std scales with the map
    np.testing.assert_allclose(model.policy.log_std.detach().exp().numpy(), expected_std, rtol=1e-5)


class _Recorder(pickle.Unpickler):
    """Records every (module, name) a pickle refers to."""

    def __init__(self, raw: bytes, seen: set[str]) -> None:
        super().__init__(io.BytesIO(raw))
        self.seen = seen

    def find_class(self, module, name):
        self.seen.add(module)
        return super().find_class(module, name)


@pytest.mark.parametrize("name", ALGOS)
def test_zip_members_are_portable(name, tmp_path):
    path = export(random_algo(name), tmp_path / "m.zip")
    with zipfile.ZipFile(path) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        expected = {"td3": {"actor.optimizer.pth", "critic.optimizer.pth"},
                    "sac": {"actor.optimizer.pth", "critic.optimizer.pth", "ent_coef_optimizer.pth"},
                    "ppo": {"policy.optimizer.pth"}}[name]
        assert set(infos) == {"data", "policy.pth", "pytorch_variables.pth"} | expected
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos.values())
        data = json.loads(archive.read("data"))
        pth = {n: torch.load(io.BytesIO(archive.read(n)), weights_only=True) for n in infos if n.endswith(".pth")}
    modules: set[str] = set()
    for value in data.values():
        if isinstance(value, dict) and ":serialized:" in value:
            _Recorder(base64.b64decode(value[":serialized:"]), modules).load()
    assert {"policy_class", "policy_kwargs", "observation_space", "action_space"} <= {
        k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v}
    assert all(m.startswith(("stable_baselines3.", "gymnasium.spaces", "numpy", "torch.nn.")) for m in modules), modules
    policy = pth["policy.pth"]
    assert policy.keys() == sb3_policy_state(random_algo(name), LOW, HIGH).keys()
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in policy.values())
    counts = {n: len(s["param_groups"][0]["params"]) for n, s in pth.items() if n.endswith("optimizer.pth")}
    if name == "ppo":
        assert counts == {"policy.optimizer.pth": len(policy)}
    else:
        assert counts["actor.optimizer.pth"] == sum(k.startswith("actor.") for k in policy)
        assert counts["critic.optimizer.pth"] == sum(k.startswith("critic.") for k in policy)


@pytest.mark.parametrize("name", ALGOS)
def test_our_zip_reads_back_into_our_networks(name, tmp_path):
    algo = random_algo(name, activation="silu")
    model = read_sb3_zip(export(algo, tmp_path / "m.zip"))
    assert (model.algo, model.obs_dim, model.num_timesteps) == (name, OBS_DIM, 123)
    assert model.net == algo.cfg.net
    obs = observations()
    restored = policy_from_zip(model, action_low=-UNIT, action_high=UNIT).predict(obs)
    if name == "ppo":  # folding the map into action_net and unfolding it rounds in the last bit
        np.testing.assert_allclose(restored, algo.policy.predict(obs), atol=1e-5)
    else:
        np.testing.assert_array_equal(restored, algo.policy.predict(obs))
    fresh = random_algo(name, activation="silu", seed=5)
    loaded = load_zip_weights(fresh, model)
    assert "entropy coefficient" in loaded if name == "sac" else "entropy coefficient" not in loaded
    pairs = ([(fresh.actor.value_net, algo.actor.value_net)] if name == "ppo"
             else [(fresh.critic, algo.critic), (fresh.critic_target, algo.critic_target)])
    for ours, original in pairs:
        for a, b in zip(ours.state_dict().values(), original.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def _genuine(name: str, path: Path) -> object:
    """A model made and saved by SB3 itself on Pendulum, its policy weights randomised (PPO's action head
    is initialised near zero)."""
    kwargs = {"td3": {"policy_kwargs": {"net_arch": [32, 16]}},
              "sac": {"policy_kwargs": {"net_arch": [32, 16], "activation_fn": torch.nn.Tanh}},
              "ppo": {"n_steps": 64, "batch_size": 32}}[name]
    model = SB3[name]("MlpPolicy", gym.make("Pendulum-v1"), device="cpu", seed=0, **kwargs)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.save(path)
    return model


@pytest.mark.parametrize("name", ALGOS)
def test_zip_saved_by_sb3_reads_into_our_actor(name, tmp_path):
    sb3_model = _genuine(name, tmp_path / "sb3.zip")
    model = read_sb3_zip(tmp_path / "sb3.zip")
    assert model.net == NetConfig(net_arch=(64, 64) if name == "ppo" else (32, 16),
                                  activation="relu" if name == "td3" else "tanh")
    low, high = model.action_low, model.action_high
    policy = policy_from_zip(model, action_low=low, action_high=high)
    obs = np.random.default_rng(2).uniform(-3, 3, (1000, 3)).astype(np.float32)
    theirs, _ = sb3_model.predict(obs, deterministic=True)
    assert np.abs(policy.predict(obs) - theirs).max() <= 1e-4 * (high - low).min()
    cfg = dataclasses.replace(algorithm_spec(name).config(), net=model.net)
    warm = build_algorithm(name, 3, low, high, cfg)
    loaded = load_zip_weights(warm, model)  # a warm start takes the critics (and targets) too
    assert loaded[0] in ("actor", "policy") and len(loaded) >= 2
    assert np.abs(warm.policy.predict(obs) - theirs).max() <= 1e-4 * (high - low).min()


def test_bad_zips_are_one_line_value_errors(tmp_path):
    good = export(random_algo("td3"), tmp_path / "good.zip")
    raw = good.read_bytes()
    (tmp_path / "truncated.zip").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.zip").write_text("not a zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("hello.txt", "hi")
    cases = {"truncated.zip": "cannot read SB3 zip", "text.zip": "cannot read SB3 zip",
             "empty.zip": "is not an SB3 model zip (no data or policy.pth member)", "missing.zip": "not found"}
    for name, message in cases.items():
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            read_sb3_zip(tmp_path / name)
        assert "\n" not in str(info.value)


def _rewrite_data(src: Path, dst: Path, **changes) -> Path:
    with zipfile.ZipFile(src) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    data = json.loads(members["data"])
    data.update(changes)
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return dst


def test_unsupported_contents_are_refused(tmp_path):
    good = export(random_algo("td3"), tmp_path / "good.zip")
    dqn = base64.b64encode(b"\x80\x02cstable_baselines3.dqn.policies\nDQNPolicy\n.").decode()
    cases = {
        "policy class": ({"policy_class": {":serialized:": dqn}}, "is not one we read"),
        "gSDE": ({"use_sde": True}, "gSDE"),
    }
    for label, (changes, message) in cases.items():
        path = _rewrite_data(good, tmp_path / f"{label}.zip", **changes)
        with pytest.raises(ValueError, match=message):
            read_sb3_zip(path)
    model = read_sb3_zip(good)
    with pytest.raises(ValueError, match=r"observations have shape \(7,\), the env's \(89,\)"):
        check_compatible(model, 89, LOW, HIGH)
    with pytest.raises(ValueError, match="action bounds"):
        check_compatible(model, OBS_DIM, -UNIT, UNIT)
    with pytest.raises(ValueError, match="holds a TD3 policy, not SAC"):
        load_zip_weights(random_algo("sac"), model)
    with pytest.raises(ValueError, match="does not fit"):
        load_zip_weights(build_algorithm("td3", OBS_DIM, -UNIT, UNIT, algorithm_spec("td3").config()), model)


class _Payload:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_reading_never_runs_code_from_the_zip(tmp_path):
    target = tmp_path / "pwned"
    evil = {":serialized:": base64.b64encode(pickle.dumps(_Payload(target))).decode()}
    path = _rewrite_data(export(random_algo("sac"), tmp_path / "good.zip"), tmp_path / "evil.zip",
                         observation_space=evil)
    with pytest.raises(ValueError, match="refusing .*pathlib"):
        read_sb3_zip(path)
    assert not target.exists()


@pytest.mark.slow  # a fresh interpreter importing torch: ~5 s
def test_writer_and_reader_do_not_import_sb3(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from rlcore.algos import build_algorithm\nfrom rlcore.registry import algorithm_spec\n"
        "from rlcore.export import export_sb3_zip, read_sb3_zip, policy_from_zip\n"
        "for name in ('td3', 'sac', 'ppo'):\n"
        "    a = build_algorithm(name, 4, -np.ones(2), np.ones(2), algorithm_spec(name).config())\n"
        f"    p = r'{tmp_path}/' + name + '.zip'\n"
        "    export_sb3_zip(a, p, obs_low=-np.ones(4), obs_high=np.ones(4), action_low=-np.ones(2),"
        " action_high=np.ones(2))\n"
        "    policy_from_zip(read_sb3_zip(p), action_low=-np.ones(2), action_high=np.ones(2))\n"
        "assert 'stable_baselines3' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
