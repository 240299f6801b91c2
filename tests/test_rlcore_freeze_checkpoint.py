"""Freeze masks (bitwise) and checkpoint save -> load -> identical actions and identical next update."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcore.algos import build_algorithm
from rlcore.buffers import Batch, RolloutBuffer
from rlcore.checkpoint import checkpoint_config, load_checkpoint, save_checkpoint, set_rng_state
from rlcore.config import BufferConfig, NetConfig, ObsNormConfig, PPOConfig, SACConfig, TD3Config

OBS, ACT = 4, 2
LOW, HIGH = -np.full(ACT, 2.0, np.float32), np.full(ACT, 2.0, np.float32)
NET = NetConfig(net_arch=(16, 16))


def _config(algo: str):
    norm = ObsNormConfig(enabled=True)
    return {"td3": TD3Config(net=NET, obs_norm=norm, policy_delay=1, buffer=BufferConfig(batch_size=8)),
            "sac": SACConfig(net=NET, obs_norm=norm, buffer=BufferConfig(batch_size=8)),
            "ppo": PPOConfig(net=NET, obs_norm=norm, n_steps=8, batch_size=4, n_epochs=2)}[algo]


def _train_step(learner, seed: int) -> None:
    """One update with data drawn from a fixed generator (the learner's own noise uses torch's global RNG)."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(8, OBS, generator=g)
    learner.normalizer.update(obs)
    if learner.on_policy:
        buf = RolloutBuffer(8, 1, OBS, ACT, seed=seed)
        for t in range(8):
            obs_t = obs[t:t + 1]
            actions = learner.explore(obs_t)
            policy_obs = learner.normalizer(obs_t)
            buf.add(policy_obs, actions, torch.randn(1, generator=g), torch.zeros(1))
        buf.finish(learner.normalizer(obs[:1]))
        learner.update(buf)
    else:
        batch = Batch(obs, torch.rand(8, ACT, generator=g) * 2 - 1, torch.randn(8, generator=g),
                      torch.randn(8, OBS, generator=g), torch.zeros(8))
        learner.update(batch.normalized(learner.normalizer))


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("algo", ["td3", "sac", "ppo"])
def test_frozen_layers_bitwise_unchanged_until_unfrozen(algo: str) -> None:
    torch.manual_seed(0)
    learner = build_algorithm(algo, OBS, LOW, HIGH, _config(algo))
    schedule = learner.set_freeze(1, until_step=100)
    trunk = learner.actor.trunk()
    frozen, free = trunk[0], trunk[1]
    frozen_before, free_before = _params(frozen), _params(free)
    for step in range(3):
        _train_step(learner, step)
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, _params(frozen), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(free_before, _params(free), strict=True))
    optimizer = learner.optimizers()[0]
    if algo == "ppo":  # one flat Adam tensor: the frozen slice of its moments stays exactly zero
        moments = optimizer.state[learner.params.flat]
        frozen_ids = {id(p) for p in frozen.parameters()}
        offset = 0
        for p in learner.actor.parameters():
            if id(p) in frozen_ids:
                for key in ("exp_avg", "exp_avg_sq"):
                    assert not moments[key][offset:offset + p.numel()].any()
            offset += p.numel()
    else:
        assert all(p not in optimizer.state for p in frozen.parameters())  # no Adam moments either
    assert schedule.maybe_unfreeze(100) is None
    assert "unfroze 1" in schedule.maybe_unfreeze(101)
    _train_step(learner, 9)
    assert not all(torch.equal(a, b) for a, b in zip(frozen_before, _params(frozen), strict=True))


def test_freeze_rejects_bad_layer_counts_and_never_touches_critics() -> None:
    learner = build_algorithm("sac", OBS, LOW, HIGH, _config("sac"))
    with pytest.raises(ValueError, match="has 4 Linear layers"):  # latent_pi (2), mu, log_std
        learner.set_freeze(4, 0)  # all of them: nothing would learn (and TD3's actor loss has no graph)
    learner.set_freeze(3, 10)
    assert all(p.requires_grad for p in learner.critic.parameters())
    assert [p.requires_grad for p in learner.actor.parameters()] == [False] * 6 + [True] * 2


@pytest.mark.parametrize("algo", ["td3", "sac", "ppo"])
def test_checkpoint_resume_gives_identical_actions_and_next_update(algo: str, tmp_path) -> None:
    torch.manual_seed(0)
    learner = build_algorithm(algo, OBS, LOW, HIGH, _config(algo))
    learner.set_freeze(1, until_step=5)
    for step in range(3):
        _train_step(learner, step)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, algo_name=algo, config=learner.cfg, algo_state=learner.state_dict(), obs_shape=(OBS,),
                    action_low=LOW, action_high=HIGH, runner_state={"timesteps": 3})
    saved_policy = build_algorithm(algo, OBS, LOW, HIGH, learner.cfg)
    saved_policy.load_state_dict(learner.state_dict())
    saved_actions = saved_policy.policy.predict
    torch.set_rng_state(load_checkpoint(path)["rng"]["torch"])  # building the copy drew random numbers
    _train_step(learner, 3)  # the original run continues
    expected = _params(learner.policy)

    payload = load_checkpoint(path)
    assert payload["algo"] == algo and payload["obs_shape"] == [OBS]
    restored = build_algorithm(algo, OBS, LOW, HIGH, checkpoint_config(payload))
    restored.load_state_dict(payload["algo_state"])
    assert restored.freeze is not None and restored.freeze.frozen
    obs = np.random.default_rng(5).normal(size=(6, OBS)).astype(np.float32)
    np.testing.assert_array_equal(restored.policy.predict(obs), saved_actions(obs))
    set_rng_state(payload["rng"])
    _train_step(restored, 3)
    assert all(torch.equal(a, b) for a, b in zip(expected, _params(restored.policy), strict=True))


def test_checkpoint_write_is_atomic_and_bad_files_are_rejected(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.pt"
    learner = build_algorithm("td3", OBS, LOW, HIGH, _config("td3"))
    kwargs = dict(algo_name="td3", config=learner.cfg, algo_state=learner.state_dict(), obs_shape=(OBS,),
                  action_low=LOW, action_high=HIGH, runner_state={})
    save_checkpoint(path, **kwargs)
    good = path.read_bytes()

    def boom(*args, **kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError):
        save_checkpoint(path, **kwargs)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    monkeypatch.undo()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
