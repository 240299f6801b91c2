"""Warm start: the RL policy equals the BC net; mismatches are errors; frozen BC layers; train.py flag checks."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from bc.cloning import BCConfig, bc_policy, load_bc, make_payload, save_bc, train_bc
from bc.warmstart import check_bc_compatible, load_bc_into, validate_bc_flags
from rlcore.algos import build_algorithm
from rlcore.config import BufferConfig, NetConfig, ObsNormConfig
from rlcore.registry import algorithm_spec
from rlcore.runner import RunConfig, Runner

OBS, ACT = 89, 12
ONES = np.ones(ACT, np.float32)


def _payload(algo: str, net_arch=(32, 16), normalize_obs=True, obs_dim=OBS, act_dim=ACT, action_mode="torque",
             epochs=2) -> dict:
    rng = np.random.default_rng(1)
    obs = (rng.normal(size=(256, obs_dim)) * 5 + 3).astype(np.float32)
    actions = np.tanh(obs[:, :act_dim] / 5).astype(np.float32)
    cfg = BCConfig(algo=algo, net_arch=net_arch, epochs=epochs, batch_size=64, lr=1e-3, normalize_obs=normalize_obs)
    return make_payload(train_bc(obs, actions, cfg, log=None), cfg, action_mode=action_mode)


def _algo(name: str, payload: dict, obs_dim=OBS, act_dim=ACT, **overrides):
    """An algorithm configured like the payload (net, normalisation), plus config overrides."""
    cfg = dataclasses.replace(algorithm_spec(name).config(), net=NetConfig(net_arch=tuple(payload["net_arch"]),
                                                            activation=payload["activation"]),
                              obs_norm=ObsNormConfig(enabled=payload["normalize_obs"]), **overrides)
    return build_algorithm(name, obs_dim, -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32), cfg)


@pytest.mark.parametrize("normalize_obs", [True, False])
@pytest.mark.parametrize("name", ["td3", "sac", "ppo"])
def test_rl_policy_equals_the_bc_net(tmp_path, name: str, normalize_obs: bool) -> None:
    payload = _payload(name, normalize_obs=normalize_obs)
    save_bc(tmp_path / "bc.pt", payload)
    algo = _algo(name, payload)
    message = load_bc_into(algo, tmp_path / "bc.pt", action_mode="torque")
    assert f"loaded BC actor ({name}, net 32,16" in message
    obs = np.random.default_rng(2).normal(3.0, 8.0, size=(500, OBS)).astype(np.float32)
    expected = bc_policy(load_bc(tmp_path / "bc.pt")).predict(obs)
    assert np.abs(algo.policy.predict(obs) - expected).max() <= 1e-6
    assert algo.normalizer.enabled == normalize_obs
    if name == "td3":
        with torch.no_grad():
            target = algo.actor_target(algo.normalizer(torch.as_tensor(obs))).numpy()
        assert np.abs(target - expected).max() <= 1e-6


def _unchanged_on_error(algo, payload, message: str, **kwargs) -> None:
    before = {k: v.clone() for k, v in algo.actor.state_dict().items()}
    mean = algo.normalizer.mean.clone()
    with pytest.raises(ValueError, match=message):
        load_bc_into(algo, payload, **kwargs)
    after = algo.actor.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and torch.equal(mean, algo.normalizer.mean)


def test_mismatches_are_errors_and_load_nothing() -> None:
    payload = _payload("td3", net_arch=(32, 16))
    _unchanged_on_error(_algo("td3", {**payload, "net_arch": [32, 16, 8]}), payload,
                        "BC net_arch 32,16 differs from the RL --net-arch 32,16,8; retrain with python -m bc.train "
                        "--net-arch 32,16,8")
    _unchanged_on_error(_algo("sac", payload), payload, "the BC weights are a td3 actor but --algo is sac")
    _unchanged_on_error(_algo("td3", {**payload, "activation": "tanh"}), payload,
                        "BC activation relu differs from the RL activation tanh")
    _unchanged_on_error(_algo("td3", {**payload, "normalize_obs": False}), payload,
                        "trained with --normalize-obs; pass --normalize-obs to train.py too")
    _unchanged_on_error(_algo("td3", payload), payload, "trained on torque actions but --action-mode is pd",
                        action_mode="pd")
    _unchanged_on_error(_algo("td3", payload, obs_dim=88), payload, "takes 89-dim observations, the env gives 88")
    _unchanged_on_error(_algo("td3", payload, act_dim=3), payload, "outputs 12-dim actions, the env takes 3")


def test_check_before_building_the_algorithm() -> None:
    payload = _payload("ppo", net_arch=(256, 256), normalize_obs=False)
    with pytest.raises(ValueError, match="BC net_arch 256,256 differs from the RL --net-arch 256,256,128"):
        check_bc_compatible(payload, algo="ppo", net=NetConfig(net_arch=(256, 256, 128), activation="tanh"),
                            obs_norm=ObsNormConfig(), obs_dim=OBS, act_dim=ACT, action_mode="torque")
    with pytest.raises(ValueError, match="trained without --normalize-obs; drop --normalize-obs"):
        check_bc_compatible(payload, algo="ppo", net=NetConfig(net_arch=(256, 256), activation="tanh"),
                            obs_norm=ObsNormConfig(enabled=True), obs_dim=OBS, act_dim=ACT)


@pytest.mark.parametrize("kwargs, message", [
    ({"bc_replay_fraction": 1.5, "bc_replay_dataset": "d.npz"}, "--bc-replay-fraction must be in [0, 1], got 1.5"),
    ({"bc_replay_fraction": -0.1}, "--bc-replay-fraction must be in [0, 1], got -0.1"),
    ({"bc_replay_fraction": float("nan")}, "--bc-replay-fraction must be in [0, 1]"),
    ({"bc_replay_fraction": 0.1}, "--bc-replay-fraction needs --bc-replay-dataset"),
    ({"bc_replay_fraction": 1.0, "bc_replay_dataset": "d.npz"}, "leaves none for the agent's own transitions"),
    ({"bc_replay_dataset": "d.npz"}, "--bc-replay-dataset needs --bc-replay-fraction > 0"),
    ({"freeze_bc_layers": 2}, "--freeze-bc-layers needs --bc-weights"),
    ({"freeze_bc_layers": -1, "bc_weights": "bc.pt"}, "--freeze-bc-layers must be >= 0"),
    ({"freeze_until_step": 100}, "--freeze-until-step needs --freeze-bc-layers > 0"),
    ({"freeze_until_step": -5}, "--freeze-until-step must be >= 0"),
    ({"bc_weights": "bc.pt", "resuming": True}, "--bc-weights initialises a new run"),
])
def test_flag_validation_errors(kwargs, message) -> None:
    with pytest.raises(ValueError) as info:
        validate_bc_flags("td3", **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_flag_validation_accepts_and_warns() -> None:
    assert validate_bc_flags("td3") == []
    assert validate_bc_flags("sac", bc_weights="bc.pt", freeze_bc_layers=2, freeze_until_step=1000,
                             bc_replay_dataset="d.npz", bc_replay_fraction=0.1) == []
    (warning,) = validate_bc_flags("ppo", bc_replay_dataset="d.npz", bc_replay_fraction=0.1)
    assert "PPO has no replay buffer: ignoring --bc-replay-dataset" in warning


class _Drift(gym.Env):
    """A 2-dim observation drifting with the action; reward -|obs|."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = np.array([0.5, -0.5], np.float32)
        return self.x.copy(), {}

    def step(self, action):
        self.x = np.clip(self.x + 0.1 * float(action[0]), -2, 2).astype(np.float32)
        return self.x.copy(), -float(np.abs(self.x).sum()), False, False, {}


FAST = {"td3": {"buffer": BufferConfig(buffer_size=500, batch_size=16, learning_starts=16)},
        "sac": {"buffer": BufferConfig(buffer_size=500, batch_size=16, learning_starts=16)},
        "ppo": {"n_steps": 30, "batch_size": 10, "n_epochs": 2}}


@pytest.mark.parametrize("name", ["td3", "sac", "ppo"])
def test_frozen_bc_layers_unchanged_until_the_step_then_trained(name: str) -> None:
    payload = _payload(name, net_arch=(16, 16), obs_dim=2, act_dim=1, normalize_obs=True)
    algo = _algo(name, payload, obs_dim=2, act_dim=1, **FAST[name])
    load_bc_into(algo, payload)
    algo.set_freeze(2, until_step=120)
    trunk = algo.actor.trunk()
    bc_layers = [[p.detach().clone() for p in layer.parameters()] for layer in trunk]
    seen: dict[int, list[bool]] = {}

    def same(i: int) -> bool:
        return all(torch.equal(a, b) for a, b in zip(bc_layers[i], trunk[i].parameters(), strict=True))

    def evaluate(policy, timestep: int) -> dict[str, float]:
        seen[timestep] = [same(i) for i in range(3)]
        return {}

    env = gym.vector.SyncVectorEnv([lambda: gym.wrappers.TimeLimit(_Drift(), 20)],
                                   autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    torch.manual_seed(0)
    Runner(algo, env, RunConfig(total_timesteps=240, eval_freq=60, random_warmup=False), evaluate=evaluate).train()
    env.close()
    assert seen[60] == [True, True, False] and seen[120] == [True, True, False]  # layer 3 learns meanwhile
    assert seen[180] == [False, False, False] and seen[240] == [False, False, False]  # unfrozen after step 120


def test_unseen_tasks_read_from_the_bc_normaliser() -> None:
    from bc.warmstart import unseen_tasks
    from envs.preprocess import OBS_DIM

    mean = torch.zeros(OBS_DIM, dtype=torch.float64)
    mean[-3:] = torch.tensor([0.5, 0.5, 0.0])  # one-hot means: goalie and obstacle seen, kick_to_target not
    payload = {"normalize_obs": True, "normalizer": {"mean": mean}}
    tasks = ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"]
    assert unseen_tasks(payload, tasks) == ["kick_to_target"]
    assert unseen_tasks(payload, tasks[:2]) == []
    assert unseen_tasks({**payload, "normalize_obs": False}, tasks) == []  # no statistics to shift


@pytest.mark.parametrize("name", ["sac", "ppo"])
def test_bc_start_sets_the_exploration_std(name: str) -> None:
    """BC fits the mean only: the spread starts at init_std on every dim, whatever the state."""
    payload = _payload(name)
    algo = _algo(name, payload)
    message = load_bc_into(algo, payload, action_mode="torque", init_std=0.2)
    assert message.endswith("exploration std 0.2")
    obs = algo.normalizer(torch.as_tensor(np.random.default_rng(3).normal(size=(7, OBS)), dtype=torch.float32))
    with torch.no_grad():
        if name == "sac":
            _, log_std = algo.actor(obs)  # pre-tanh Gaussian of every state
        else:
            log_std = algo.actor.log_std.expand(7, ACT)
    torch.testing.assert_close(log_std.exp(), torch.full((7, ACT), 0.2))
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        load_bc_into(_algo(name, payload), payload, init_std=0.0)
