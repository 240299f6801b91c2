"""TD3, SAC and PPO internals on tiny tensors with hand-computed numbers."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlcore.algos import build_algorithm
from rlcore.algos.ppo import clipped_policy_loss, normalize_advantages, value_loss
from rlcore.buffers import Batch, RolloutBuffer
from rlcore.config import BufferConfig, NetConfig, PPOConfig, SACConfig, TD3Config
from rlcore.networks import squashed_log_prob

ROOT = Path(__file__).resolve().parents[1]

OBS, ACT = 3, 2
LOW, HIGH = -np.ones(ACT, np.float32), np.ones(ACT, np.float32)
SMALL = NetConfig(net_arch=(8, 8))


def _batch(n: int = 4, terminated: list[float] | None = None) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(n, OBS, generator=g), torch.rand(n, ACT, generator=g) * 2 - 1,
                 torch.arange(n, dtype=torch.float32), torch.randn(n, OBS, generator=g),
                 torch.tensor(terminated if terminated is not None else [0.0] * n))


class _ConstQ(nn.Module):
    """A critic stand-in returning fixed Q values and recording the actions it was asked about."""

    def __init__(self, q1: float, q2: float) -> None:
        super().__init__()
        self.q1, self.q2 = q1, q2
        self.seen_actions: torch.Tensor | None = None

    def forward(self, obs: torch.Tensor, action: torch.Tensor, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen_actions = action
        return torch.full((len(obs),), self.q1), torch.full((len(obs),), self.q2)


class _ConstActor(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, obs: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.full((len(obs), ACT), self.value)


# ---------------------------------------------------------------- TD3
def test_td3_target_uses_min_q_and_masks_only_termination() -> None:
    td3 = build_algorithm("td3", OBS, LOW, HIGH, TD3Config(net=SMALL, gamma=0.5))
    td3.critic_target = _ConstQ(3.0, 5.0)
    y = td3._q_target(_batch(4, terminated=[0.0, 1.0, 0.0, 1.0]))
    # rewards 0,1,2,3; min Q' = 3; gamma 0.5; terminated rows do not bootstrap
    torch.testing.assert_close(y, torch.tensor([0 + 1.5, 1.0, 2 + 1.5, 3.0]))


def test_td3_target_smoothing_noise_is_clipped_and_action_bounded() -> None:
    td3 = build_algorithm("td3", OBS, LOW, HIGH, TD3Config(net=SMALL, target_policy_noise=100.0,
                                                           target_noise_clip=0.5))
    td3.actor_target = _ConstActor(0.8)
    td3.critic_target = critic = _ConstQ(0.0, 0.0)
    td3._q_target(_batch(256))
    seen = critic.seen_actions
    # noise (std 100) clipped to +-0.5 around 0.8, then the action clipped to [-1, 1]: [0.3, 1.0],
    # almost always at one of the two ends
    assert float(seen.min()) == pytest.approx(0.3) and float(seen.max()) == 1.0
    at_ends = torch.isclose(seen, torch.tensor(0.3)) | (seen == 1.0)
    assert at_ends.float().mean() > 0.98


def test_td3_delays_actor_and_targets() -> None:
    tau = 0.25
    td3 = build_algorithm("td3", OBS, LOW, HIGH, TD3Config(net=SMALL, policy_delay=2, tau=tau))
    actor0 = [p.clone() for p in td3.actor.parameters()]
    target0 = [p.clone() for p in td3.critic_target.parameters()]
    out1 = td3.update(_batch())
    assert "train/actor_loss" not in out1
    assert all(torch.equal(a, b) for a, b in zip(actor0, td3.actor.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(target0, td3.critic_target.parameters(), strict=True))
    out2 = td3.update(_batch())
    assert "train/actor_loss" in out2
    assert not all(torch.equal(a, b) for a, b in zip(actor0, td3.actor.parameters(), strict=True))
    for old, new, online in zip(target0, td3.critic_target.parameters(), td3.critic.parameters(), strict=True):
        torch.testing.assert_close(new, (1 - tau) * old + tau * online)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_actor_waits_for_actor_learning_starts(algo: str) -> None:
    cfg = (TD3Config if algo == "td3" else SACConfig)(net=SMALL, actor_learning_starts=4)
    learner = build_algorithm(algo, OBS, LOW, HIGH, dataclasses.replace(cfg, policy_delay=1) if algo == "td3" else cfg)
    actor0 = [p.clone() for p in learner.actor.parameters()]
    critic0 = [p.clone() for p in learner.critic.parameters()]
    for _ in range(4):
        out = learner.update(_batch())
        assert "train/actor_loss" not in out
    assert all(torch.equal(a, b) for a, b in zip(actor0, learner.actor.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(critic0, learner.critic.parameters(), strict=True))
    assert "train/actor_loss" in learner.update(_batch())


def test_demo_mse_averages_over_demo_rows_only() -> None:
    from rlcore.losses import demo_mse

    actions = torch.tensor([[1.0, 1.0], [0.0, 0.0], [5.0, 5.0]])
    targets = torch.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    demo = torch.tensor([1.0, 1.0, 0.0])
    assert float(demo_mse(actions, targets, demo)) == pytest.approx((1.0 + 2.0) / 2)  # row means 1 and 2
    assert float(demo_mse(actions, targets, torch.zeros(3))) == 0.0


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_bc_coef_pulls_the_actor_to_demo_actions(algo: str) -> None:
    torch.manual_seed(0)
    cfg_cls = TD3Config if algo == "td3" else SACConfig
    kwargs = {"policy_delay": 1} if algo == "td3" else {}
    learner = build_algorithm(algo, OBS, LOW, HIGH, cfg_cls(net=SMALL, bc_coef=50.0, learning_rate=3e-3, **kwargs))
    batch = _batch(16)
    target = torch.full((16, ACT), 0.5)
    demo_batch = Batch(batch.obs, target, batch.rewards, batch.next_obs, batch.terminated, torch.ones(16))
    before = float(learner.policy(batch.obs).sub(0.5).abs().mean())
    for _ in range(200):
        learner.update(demo_batch)
    after = float(learner.policy(batch.obs).sub(0.5).abs().mean())
    assert after < 0.5 * before


def test_regularised_actor_loss_by_hand() -> None:
    from rlcore.losses import regularised_actor_loss

    q = torch.tensor([-4.0, 2.0])  # mean |Q| = 3: the policy loss is divided by 3
    policy_loss = torch.tensor(6.0)
    assert float(regularised_actor_loss(q, policy_loss, None, None, 9.0, 9.0)) == 6.0  # no term: unscaled
    assert float(regularised_actor_loss(q, policy_loss, torch.tensor(0.5), None, 4.0, 9.0)) == pytest.approx(4.0)
    assert float(regularised_actor_loss(q, policy_loss, None, torch.tensor(0.25), 4.0, 8.0)) == pytest.approx(4.0)
    small_q = torch.tensor([0.1, -0.1])  # mean |Q| < 1: not amplified
    assert float(regularised_actor_loss(small_q, policy_loss, torch.tensor(1.0), torch.tensor(1.0), 1.0, 2.0)) == 9.0


class _PushQ(nn.Module):
    """A critic stand-in whose Q grows with the first action dim: a steady push away from any start."""

    def forward(self, obs: torch.Tensor, action: torch.Tensor, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
        q = 5.0 * action[:, 0]
        return q, q

    def q1(self, obs: torch.Tensor, action: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self(obs, action)[0]


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_anchor_holds_a_warm_start_against_the_critic(algo: str) -> None:
    """With the same critic push, the anchored actor stays near its start; the free one runs off."""
    cfg_cls = TD3Config if algo == "td3" else SACConfig
    kwargs = {"policy_delay": 1} if algo == "td3" else {"ent_coef": 1e-6}
    batch = _batch(32)
    drift = {}
    for coef in (0.0, 50.0):
        torch.manual_seed(0)
        learner = build_algorithm(algo, OBS, LOW, HIGH, cfg_cls(net=SMALL, anchor_coef=coef, learning_rate=3e-3,
                                                                **kwargs))
        learner.set_anchor()
        start = learner.policy(batch.obs).clone()
        learner.critic = _PushQ()
        for _ in range(150):
            learner._update_actor(batch) if algo == "td3" else learner._update_actor(batch, torch.tensor(1e-6))
        drift[coef] = float((learner.policy(batch.obs) - start)[:, 0].mean())
    assert drift[0.0] > 0.5  # the push moves the free actor towards +1 on dim 0
    assert abs(drift[50.0]) < 0.2 * drift[0.0]


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_anchor_is_kept_in_the_state_dict(algo: str) -> None:
    cfg = (TD3Config if algo == "td3" else SACConfig)(net=SMALL, anchor_coef=1.0)
    learner = build_algorithm(algo, OBS, LOW, HIGH, cfg)
    assert learner.state_dict()["anchor"] is None
    learner.set_anchor()
    with torch.no_grad():
        next(learner.actor.parameters()).add_(1.0)  # the actor moves on; the anchor must not
    restored = build_algorithm(algo, OBS, LOW, HIGH, cfg)
    restored.load_state_dict(learner.state_dict())
    for a, b in zip(restored.anchor.parameters(), learner.anchor.parameters(), strict=True):
        assert torch.equal(a, b) and not a.requires_grad
    legacy = {k: v for k, v in learner.state_dict().items() if k != "anchor"}  # checkpoints before the anchor
    build_algorithm(algo, OBS, LOW, HIGH, cfg).load_state_dict(legacy)


def test_td3_actor_step_leaves_critic_gradients_empty() -> None:
    td3 = build_algorithm("td3", OBS, LOW, HIGH, TD3Config(net=SMALL, policy_delay=1))
    td3.update(_batch())
    assert all(p.requires_grad for p in td3.critic.parameters())
    td3.critic_optimizer.zero_grad(set_to_none=True)
    td3._update_actor(_batch())
    assert all(p.grad is None for p in td3.critic.parameters())


# ---------------------------------------------------------------- SAC
def test_squashed_log_prob_matches_change_of_variables() -> None:
    u = torch.linspace(-6, 6, 101, dtype=torch.float64)[:, None]
    mean, log_std = torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([[0.2]], dtype=torch.float64)
    naive = (torch.distributions.Normal(mean, log_std.exp()).log_prob(u) - torch.log(1 - torch.tanh(u) ** 2)).sum(-1)
    torch.testing.assert_close(squashed_log_prob(u, mean, log_std), naive)
    # the squashed density integrates to 1 over a in (-1, 1)
    a = torch.linspace(-1 + 1e-9, 1 - 1e-9, 200_001, dtype=torch.float64)[:, None]
    density = squashed_log_prob(torch.atanh(a), mean, log_std).exp()
    assert torch.trapezoid(density, a.squeeze(-1)).item() == pytest.approx(1.0, abs=1e-4)


def test_squashed_sample_node_has_the_recorded_ops_values_and_their_gradients() -> None:
    """squashed_sample's one autograd node: the same values as the plain ops on the same noise (bitwise, with or
    without a gradient to record), and its hand-written backward equal to autograd's chain rule (float64
    gradcheck against finite differences; float32 against autograd through the recorded ops)."""
    from rlcore.networks import _SquashedSample, squashed_sample

    torch.manual_seed(0)
    mean = torch.randn(64, 5, requires_grad=True)
    log_std = (torch.rand(64, 5) * 4 - 3).requires_grad_(True)
    torch.manual_seed(1)
    action, log_prob = squashed_sample(mean, log_std)
    torch.manual_seed(1)
    noise = torch.randn_like(mean)
    u = mean + log_std.exp() * noise  # the ops as recorded before the node existed
    ref_action, ref_log_prob = torch.tanh(u), squashed_log_prob(u, mean, log_std)
    assert torch.equal(action, ref_action) and torch.equal(log_prob, ref_log_prob)
    with torch.no_grad():
        torch.manual_seed(1)
        assert all(torch.equal(a, b) for a, b in zip(squashed_sample(mean, log_std), (action, log_prob), strict=True))
    grad_a, grad_lp = torch.randn(64, 5), torch.randn(64)
    got = torch.autograd.grad((action, log_prob), (mean, log_std), (grad_a, grad_lp))
    want = torch.autograd.grad((ref_action, ref_log_prob), (mean, log_std), (grad_a, grad_lp))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    inputs = (mean.detach().double().requires_grad_(True), log_std.detach().double().requires_grad_(True),
              noise.double())
    assert torch.autograd.gradcheck(_SquashedSample.apply, inputs)


def test_sac_target_subtracts_entropy_term() -> None:
    sac = build_algorithm("sac", OBS, LOW, HIGH, SACConfig(net=SMALL, gamma=0.5))
    sac.critic_target = _ConstQ(3.0, 5.0)
    batch = _batch(4, terminated=[0.0, 1.0, 0.0, 0.0])
    torch.manual_seed(0)
    y = sac._q_target(batch, torch.tensor(0.2))
    torch.manual_seed(0)
    _, next_log_prob = sac.actor.sample(batch.next_obs)
    expected = batch.rewards + 0.5 * (1 - batch.terminated) * (3.0 - 0.2 * next_log_prob)
    torch.testing.assert_close(y, expected)


def test_sac_alpha_moves_toward_target_entropy() -> None:
    lr = 0.01
    sac = build_algorithm("sac", OBS, LOW, HIGH, SACConfig(net=SMALL, learning_rate=lr))
    assert sac.target_entropy == -ACT and float(sac.alpha) == 1.0
    # log pi = 5: entropy estimate -5 is below the target -2, so alpha must grow (Adam's first step = lr)
    sac._update_alpha(torch.full((8,), 5.0))
    assert float(sac.log_alpha.detach()) == pytest.approx(lr, rel=1e-4)
    assert float(sac.alpha) == pytest.approx(math.exp(lr), rel=1e-4)
    # log pi = -5: entropy 5 is above the target -2, too random, alpha must shrink
    sac = build_algorithm("sac", OBS, LOW, HIGH, SACConfig(net=SMALL, learning_rate=lr))
    sac._update_alpha(torch.full((8,), -5.0))
    assert float(sac.log_alpha.detach()) == pytest.approx(-lr, rel=1e-4)


def test_sac_alpha_floor_and_fixed_alpha() -> None:
    sac = build_algorithm("sac", OBS, LOW, HIGH, SACConfig(net=SMALL, learning_rate=0.5, ent_coef_min=0.9))
    for _ in range(5):
        sac._update_alpha(torch.full((8,), -5.0))  # shrinking alpha hits the floor
    assert float(sac.alpha) == pytest.approx(0.9)
    fixed = build_algorithm("sac", OBS, LOW, HIGH, SACConfig(net=SMALL, ent_coef=0.05))
    out = fixed.update(_batch())
    assert "train/ent_coef_loss" not in out and float(out["train/ent_coef"]) == pytest.approx(0.05)
    assert fixed.alpha_optimizer is None


# ---------------------------------------------------------------- PPO
def test_ppo_clipped_objective_hand_computed() -> None:
    adv = torch.tensor([1.0, -1.0, 2.0, -2.0])
    ratio = torch.tensor([1.5, 0.5, 0.9, 1.1])
    # min(A r, A clip(r, .8, 1.2)): 1.2, -0.8, 1.8, -2.2
    loss = clipped_policy_loss(adv, ratio.log(), 0.2)
    assert float(loss) == pytest.approx(-(1.2 - 0.8 + 1.8 - 2.2) / 4)


def test_ppo_value_clipping_off_by_default() -> None:
    assert PPOConfig().clip_range_vf is None
    values, old, returns = torch.tensor([3.0]), torch.tensor([1.0]), torch.tensor([0.0])
    assert float(value_loss(values, old, returns, None)) == 9.0
    assert float(value_loss(values, old, returns, 0.5)) == 2.25  # clipped to 1.5


def test_ppo_advantage_normalisation() -> None:
    adv = normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert float(adv.mean()) == pytest.approx(0.0, abs=1e-7)
    assert float(adv.std()) == pytest.approx(1.0, abs=1e-6)


def test_ppo_update_reports_sb3_metrics_and_first_ratio_is_one() -> None:
    ppo = build_algorithm("ppo", OBS, LOW, HIGH, PPOConfig(net=SMALL, n_steps=8, batch_size=4, n_epochs=1))
    buf = RolloutBuffer(8, 2, OBS, ACT, seed=0)
    for _ in range(8):
        obs_t = torch.randn(2, OBS)
        actions = ppo.explore(obs_t)
        policy_obs = ppo.normalizer(obs_t)
        buf.add(policy_obs, actions, torch.randn(2), torch.zeros(2))
    # the log-prob computed from the sampling noise equals the batched one the update uses (ratio 1 at start)
    torch.manual_seed(3)
    obs = torch.randn(5, OBS)
    actions, log_prob = ppo.actor.sample(obs)
    torch.testing.assert_close(log_prob, ppo.actor.log_prob(obs, actions))
    naive = torch.distributions.Normal(ppo.actor.mean(obs), ppo.actor.log_std.exp()).log_prob(actions).sum(-1)
    torch.testing.assert_close(log_prob, naive)
    with torch.no_grad():  # the update scores the rollout with the pre-update policy
        expected_values = ppo.actor.value(buf.obs.reshape(16, OBS)).reshape(8, 2)
    buf.finish(torch.randn(2, OBS))
    out = ppo.update(buf)
    torch.testing.assert_close(buf.values, expected_values)
    for key in ("train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/approx_kl",
                "train/clip_fraction", "train/explained_variance", "train/std", "train/loss"):
        assert key in out and out[key].ndim == 0
    assert ppo.n_updates == 1



def _ppo_rollout(ppo, rewards: torch.Tensor | None = None) -> RolloutBuffer:
    buf = RolloutBuffer(8, 2, OBS, ACT, seed=0)
    for t in range(8):
        obs_t = torch.randn(2, OBS)
        actions = ppo.explore(obs_t)
        policy_obs = ppo.normalizer(obs_t)
        buf.add(policy_obs, actions, torch.randn(2) if rewards is None else rewards[t], torch.zeros(2))
    buf.finish(torch.randn(2, OBS))
    return buf


def test_ppo_value_only_start_keeps_the_policy() -> None:
    torch.manual_seed(0)
    ppo = build_algorithm("ppo", OBS, LOW, HIGH, PPOConfig(net=SMALL, n_steps=8, batch_size=4, n_epochs=2,
                                                           actor_learning_starts=2, ent_coef=0.01))
    policy = [p.clone() for p in (ppo.actor.log_std, *ppo.actor.trunk()[0].parameters())]
    value = ppo.actor.value_net.weight.clone()
    for _ in range(2):  # two value-only rollouts
        ppo.update(_ppo_rollout(ppo))
    assert all(torch.equal(a, b) for a, b in zip(policy, (ppo.actor.log_std, *ppo.actor.trunk()[0].parameters()),
                                                  strict=True))
    assert not torch.equal(value, ppo.actor.value_net.weight)
    ppo.update(_ppo_rollout(ppo))  # the third moves the policy too
    assert not torch.equal(policy[0], ppo.actor.log_std)
    restored = build_algorithm("ppo", OBS, LOW, HIGH, ppo.cfg)
    restored.load_state_dict(ppo.state_dict())
    assert restored.n_rollouts == 3


def test_ppo_anchor_pulls_the_mean_back_to_the_warm_start() -> None:
    """The policy starts 0.5 away from its anchor; the same rollout and update pull it back only with the anchor."""
    drift = {}
    for coef in (0.0, 5.0):
        torch.manual_seed(0)
        ppo = build_algorithm("ppo", OBS, LOW, HIGH, PPOConfig(net=SMALL, n_steps=8, batch_size=16, n_epochs=20,
                                                               ent_coef=0.0, anchor_coef=coef, learning_rate=3e-2))
        ppo.set_anchor()
        with torch.no_grad():
            ppo.actor.action_net.bias.add_(0.5)  # the policy has moved away from its start
        obs = torch.randn(64, OBS)
        ppo.update(_ppo_rollout(ppo, torch.ones(8, 2)))
        with torch.no_grad():
            drift[coef] = float((ppo.actor.mean(obs) - ppo.anchor.mean(obs)).abs().mean())
    assert drift[0.0] > 0.25  # the policy gradient alone leaves it far away
    assert drift[5.0] < 0.4 * drift[0.0]

def test_ppo_target_kl_stops_epochs_early() -> None:
    cfg = PPOConfig(net=SMALL, n_steps=8, batch_size=4, n_epochs=10, target_kl=1e-12, learning_rate=0.1)
    ppo = build_algorithm("ppo", OBS, LOW, HIGH, cfg)
    buf = RolloutBuffer(8, 1, OBS, ACT, seed=0)
    for _ in range(8):
        obs_t = torch.randn(1, OBS)
        actions = ppo.explore(obs_t)
        policy_obs = ppo.normalizer(obs_t)
        buf.add(policy_obs, actions, torch.randn(1), torch.zeros(1))
    buf.finish(torch.randn(1, OBS))
    ppo.update(buf)
    assert ppo.n_updates == 1


# ---------------------------------------------------------------- shared
@pytest.mark.parametrize("algo", ["td3", "sac", "ppo"])
def test_deployed_policy_maps_onto_env_bounds(algo: str) -> None:
    low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32)
    cfg = {"td3": TD3Config, "sac": SACConfig, "ppo": PPOConfig}[algo](net=SMALL)
    learner = build_algorithm(algo, OBS, low, high, cfg)
    policy = learner.policy
    torch.testing.assert_close(policy.to_env(torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])),
                               torch.tensor([[-2.0, 0.0], [2.0, 10.0], [0.0, 5.0]]))
    obs = np.random.default_rng(0).normal(size=(5, OBS)).astype(np.float32)
    actions = policy.predict(obs)
    assert actions.shape == (5, 2) and np.all(actions >= low - 1e-6) and np.all(actions <= high + 1e-6)
    np.testing.assert_allclose(policy.predict(obs[0]), actions[0], rtol=1e-6)


@pytest.mark.parametrize("algo", ["td3", "sac", "ppo"])
def test_stochastic_predict_samples_within_bounds(algo: str) -> None:
    low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32)
    cfg = {"td3": TD3Config, "sac": SACConfig, "ppo": PPOConfig}[algo](net=SMALL)
    policy = build_algorithm(algo, OBS, low, high, cfg).policy
    obs = np.zeros((200, OBS), np.float32)
    sampled = policy.predict(obs, deterministic=False)
    assert np.all(sampled >= low - 1e-6) and np.all(sampled <= high + 1e-6)
    if algo == "td3":  # SB3's TD3.predict is deterministic either way
        np.testing.assert_array_equal(sampled, policy.predict(obs))
    else:  # one state, 200 draws: they spread around the deterministic action
        assert sampled[:, 0].std() > 0.1


@pytest.mark.parametrize("algo", ["td3", "sac", "ppo"])
def test_same_seed_same_parameters(algo: str) -> None:
    def run() -> list[torch.Tensor]:
        torch.manual_seed(7)
        cfg = {"td3": TD3Config(net=SMALL, buffer=BufferConfig(batch_size=4)), "sac": SACConfig(net=SMALL),
               "ppo": PPOConfig(net=SMALL)}[algo]
        learner = build_algorithm(algo, OBS, LOW, HIGH, cfg)
        if algo == "ppo":
            buf = RolloutBuffer(8, 1, OBS, ACT, seed=0)
            for _ in range(8):
                obs_t = torch.randn(1, OBS)
                actions = learner.explore(obs_t)
                policy_obs = learner.normalizer(obs_t)
                buf.add(policy_obs, actions, torch.randn(1), torch.zeros(1))
            buf.finish(torch.randn(1, OBS))
            learner.update(buf)
        else:
            for _ in range(3):
                learner.update(_batch())
        return [p.detach().clone() for p in learner.policy.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(run(), run(), strict=True))


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "leaky_relu", "silu"])
def test_actor_critic_fast_path_equals_its_modules(activation: str) -> None:
    from rlcore.networks import ActorCritic

    model = ActorCritic(OBS, ACT, NetConfig(net_arch=(8, 8), activation=activation))
    obs = torch.randn(5, OBS)
    torch.testing.assert_close(model.mean(obs), model.action_net(model.mlp_extractor.policy_net(obs)), rtol=0, atol=0)
    torch.testing.assert_close(model.value(obs), model.value_net(model.mlp_extractor.value_net(obs)).squeeze(-1),
                               rtol=0, atol=0)
    torch.manual_seed(3)
    sampled = model.sample_action(obs)
    torch.manual_seed(3)
    torch.testing.assert_close(sampled, model.sample(obs)[0])  # the same draw, without the log-prob


def test_flat_clip_grad_norm_matches_torch() -> None:
    from rlcore.optim import FlatParameters

    for scale in (10.0, 0.01):  # clipped, and left alone (coefficient clamped to 1)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        flat = FlatParameters(model)
        model(torch.randn(6, 3)).sum().mul(scale).backward()
        copies = [nn.Parameter(p.detach().clone()) for p in model.parameters()]
        for copy, p in zip(copies, model.parameters(), strict=True):
            copy.grad = p.grad.clone()
        expected_norm = torch.nn.utils.clip_grad_norm_(copies, 0.5)
        norm = flat.clip_grad_norm(0.5)
        torch.testing.assert_close(norm, expected_norm)
        for p, copy in zip(model.parameters(), copies, strict=True):
            torch.testing.assert_close(p.grad, copy.grad)


def _adam_run(make, step, steps: int = 5, frozen_at: tuple[int, ...] = (0, 3), swap_at: int | None = None,
              remake=None, tmp_path=None) -> list[torch.Tensor]:
    """Parameters, moments and step counts after `steps` Adam steps of a small model (the bias of layer 0 frozen
    at `frozen_at`: no gradient, so skipped); at `swap_at` the state is saved (weights only) and loaded into
    `remake`'s optimizer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = make(model.parameters())
    for i in range(steps):
        model[0].bias.requires_grad_(i not in frozen_at)
        model(torch.randn(16, 3)).square().mean().backward()
        step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        assert all(p.grad is None for p in model.parameters())
        if i == swap_at:
            torch.save(optimizer.state_dict(), tmp_path / "opt.pt")
            optimizer = remake(model.parameters())
            optimizer.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    moments = [t for p in model.parameters() for t in optimizer.state[p].values()]
    return [p.detach().clone() for p in model.parameters()] + moments


def _torch_adam(params):
    return torch.optim.Adam(params, lr=1e-2, fused=True)


def _our_adam(params):
    from rlcore.optim import make_adam

    return make_adam(params, 1e-2, torch.device("cpu"))


def test_our_adam_is_bitwise_torch_fused_adam() -> None:
    """rlcore.optim.Adam (what make_adam gives on the CPU) against torch.optim.Adam(fused=True): same bits,
    including a frozen parameter (skipped, its moments untouched) and a parameter's first step (state created)."""
    from rlcore.optim import Adam, adam_step

    assert isinstance(_our_adam([nn.Parameter(torch.zeros(2))]), Adam)
    ours = _adam_run(_our_adam, adam_step, steps=8)
    assert all(torch.equal(a, b) for a, b in zip(ours, _adam_run(_torch_adam, lambda o: o.step(), steps=8),
                                                  strict=True))


def test_lean_step_of_torch_adam_is_bitwise_its_step() -> None:
    """adam_step on torch's fused Adam (the CUDA path) replaces its step(): same kernels, same bits."""
    from rlcore.optim import adam_step

    lean = _adam_run(_torch_adam, adam_step, steps=8)
    assert all(torch.equal(a, b) for a, b in zip(lean, _adam_run(_torch_adam, lambda o: o.step(), steps=8),
                                                  strict=True))


@pytest.mark.parametrize(("first", "second"), [(_our_adam, _torch_adam), (_torch_adam, _our_adam),
                                               (_our_adam, _our_adam)])
def test_adam_state_moves_between_ours_and_torchs_mid_run(tmp_path, first, second) -> None:
    """One format: a state_dict saved by either Adam (weights only) loads into either and the run goes on with
    the same bits as torch's Adam throughout; our state_dict is torch's, key for key."""
    from rlcore.optim import adam_step

    moved = _adam_run(first, adam_step, steps=8, swap_at=4, remake=second, tmp_path=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(moved, _adam_run(_torch_adam, lambda o: o.step(), steps=8),
                                                  strict=True))
    params = [nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))]
    ours, theirs = _our_adam(params), _torch_adam(params)
    for optimizer in (ours, theirs):
        params[0].grad = torch.ones(3)  # the second parameter has no gradient: no state
        optimizer.step()
    a, b = ours.state_dict(), theirs.state_dict()
    assert a["param_groups"] == b["param_groups"] and list(a["state"]) == list(b["state"]) == [0]
    assert all(list(a["state"][i]) == list(b["state"][i]) and all(torch.equal(a["state"][i][k], b["state"][i][k])
                                                                     for k in a["state"][i]) for i in a["state"])


def test_the_adam_settings_we_write_are_the_installed_torchs() -> None:
    """GROUP_DEFAULTS and fresh_adam_state (SB3 zips) spell out torch.optim.Adam's state_dict without building
    one; they must stay what this torch writes."""
    from rlcore.optim import GROUP_DEFAULTS, fresh_adam_state

    params = [nn.Parameter(torch.zeros(())) for _ in range(3)]
    assert fresh_adam_state(3, 3e-4) == torch.optim.Adam(params, lr=3e-4).state_dict()
    fused = torch.optim.Adam(params, lr=3e-4, fused=True).state_dict()["param_groups"][0]
    assert {k: v for k, v in fused.items() if k not in ("lr", "params")} == GROUP_DEFAULTS


def _good_state() -> dict:
    params = [nn.Parameter(torch.ones(3))]
    optimizer = _torch_adam(params)
    params[0].grad = torch.ones(3)
    optimizer.step()
    return optimizer.state_dict()


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda sd: sd.update(param_groups=[]), "one parameter group"),
    (lambda sd: sd["param_groups"][0].update(params=[0, 1]), "a group of 2 parameters for 1"),
    (lambda sd: sd.update(state={7: sd["state"][0]}), "of a known parameter"),
    (lambda sd: sd["state"][0].pop("exp_avg_sq"), "expected step, exp_avg, exp_avg_sq"),
    (lambda sd: sd["state"][0].update(exp_avg=torch.zeros(4)), "exp_avg of shape \\(4,\\)"),
    (lambda sd: sd["state"][0].update(step=[1.0]), "expected tensors"),
    (lambda sd: sd["param_groups"][0].update(amsgrad=True), "no amsgrad"),
    (lambda sd: sd["param_groups"][0].update(lr="fast"), "numeric lr"),
    (lambda sd: sd.update(state=None), "expected a dict"),
])
def test_our_adam_refuses_a_state_that_does_not_fit(spoil, message) -> None:
    """A checkpoint's optimizer state is checked before it replaces anything: one ValueError, the old state kept."""
    from rlcore.optim import make_adam

    state = _good_state()
    spoil(state)
    optimizer = make_adam([nn.Parameter(torch.ones(3))], 1e-3, torch.device("cpu"))
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(state)
    assert optimizer.state == {} and optimizer.param_groups[0]["lr"] == 1e-3


def test_a_cpu_run_never_imports_torch_dynamo() -> None:
    """Building TD3 and SAC, updating, checkpointing and reloading them on the CPU leaves torch._dynamo unimported:
    torch.optim's optimizers import it on construction (~1-1.6 s of a run's start), rlcore.optim.Adam does not."""
    code = """
import sys, numpy as np, torch
from rlcore.algos import build_algorithm
from rlcore.config import SACConfig, TD3Config
for algo, cls in (("td3", TD3Config), ("sac", SACConfig)):
    learner = build_algorithm(algo, 4, -np.ones(2, np.float32), np.ones(2, np.float32), cls(), "cpu")
    for p in learner.optimizers()[0].param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    learner.optimizers()[0].step()
    again = build_algorithm(algo, 4, -np.ones(2, np.float32), np.ones(2, np.float32), cls(), "cpu")
    again.load_state_dict(learner.state_dict())
assert "torch._dynamo" not in sys.modules, "torch._dynamo was imported"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
