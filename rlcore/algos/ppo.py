"""PPO: Proximal Policy Optimization with the clipped surrogate (Schulman et al. 2017, arXiv:1707.06347).

Implementation details (SB3's PPO unless stated):
1. Gaussian policy with a state-independent log std, separate policy and value MLPs (Tanh by default),
   orthogonal initialisation (gains sqrt 2 / 0.01 / 1).
2. Actions are sampled unbounded and stored unclipped (for the log-prob); the env receives them
   clipped to [-1, 1]. The deployed action is the clipped mean.
3. GAE(lambda) advantages; a truncated episode bootstraps V(final observation) into its last reward
   (done by the runner), a terminated one does not.
4. Advantages normalised per minibatch (mean 0, std 1 with eps 1e-8) when `normalize_advantage`.
5. Clipped objective: L = -mean(min(A r, A clip(r, 1 - eps, 1 + eps))), r = exp(log pi - log pi_old).
6. Value loss MSE(returns, V); value clipping only when `clip_range_vf` is set (off by default).
7. loss = L + ent_coef * (-entropy) + vf_coef * value_loss; global grad-norm clip at `max_grad_norm`.
8. approx_kl = mean((r - 1) - log r) (Schulman's k3 estimator, as SB3). With `target_kl`, the epochs stop
   once approx_kl > 1.5 target_kl; that check is a host sync made once per epoch (the rule for
   data-dependent stops, docs/design.md), whereas SB3 checks every minibatch.
9. V(s) and log pi(a|s) of the rollout are computed once, batched, at the start of `update` (the policy
   is fixed during collection, so they equal SB3's per-step values); acting costs one mean forward.
10. All parameters live in one flat tensor (rlcore.optim.FlatParameters): one Adam tensor, one norm for
    the clip. Same arithmetic as per-layer Adam and clipping, less per-tensor overhead.
11. Optional value-only start (for warm-started policies): the first `actor_learning_starts` rollouts train
    only the value function (loss = vf_coef * value_loss), so the policy waits for advantages that mean
    something. Its parameters get zero gradients then, and Adam moves nothing with zero moments.
12. Optional warm-start anchor: after `set_anchor()` the loss adds anchor_coef * MSE(mean(s), mean_anchor(s))
    over the minibatch (TD3's detail 10 for the Gaussian mean).

Metrics: train/policy_gradient_loss, train/value_loss, train/entropy_loss, train/approx_kl,
train/clip_fraction, train/loss, train/explained_variance, train/std.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rlcore import metrics
from rlcore.algos.protocol import fine_tuning_state, load_fine_tuning_state
from rlcore.buffers import RolloutBatch, RolloutBuffer
from rlcore.config import PPOConfig
from rlcore.freeze import FreezeSchedule
from rlcore.losses import anchor_mse
from rlcore.networks import ActorCritic, zero_layer
from rlcore.normalizer import RunningNormalizer
from rlcore.optim import Adam, FlatParameters, frozen_copy, make_adam
from rlcore.policy import DeployedPolicy


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Var(target - predicted) / Var(target); nan when the target has no variance (SB3)."""
    var_target = target.var()
    return torch.where(var_target == 0, torch.nan, 1.0 - (target - predicted).var() / var_target)


def normalize_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """(A - mean) / (std + 1e-8) over the minibatch (detail 4)."""
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def clipped_policy_loss(advantages: torch.Tensor, log_ratio: torch.Tensor, clip_range: float) -> torch.Tensor:
    """-mean(min(A r, A clip(r, 1 - eps, 1 + eps))) with r = exp(log_ratio) (detail 5)."""
    ratio = log_ratio.exp()
    return -torch.minimum(advantages * ratio, advantages * ratio.clamp(1 - clip_range, 1 + clip_range)).mean()


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               clip_range_vf: float | None) -> torch.Tensor:
    """MSE(returns, V); with clip_range_vf, V is first clipped to old V +- clip_range_vf (detail 6, SB3)."""
    if clip_range_vf is not None:
        values = old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)
    return F.mse_loss(values, returns)


class PPO:
    """PPO learner; acts in the [-1, 1] action space (samples clipped for the env)."""

    name = "ppo"
    on_policy = True

    def __init__(self, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: PPOConfig,
                 device: torch.device) -> None:
        act_dim = len(action_low)
        self.cfg = cfg
        self.device = device
        self.normalizer = RunningNormalizer((obs_dim,), cfg.obs_norm, device)
        self.actor = ActorCritic(obs_dim, act_dim, cfg.net, cfg.log_std_init).to(device)
        self.params = FlatParameters(self.actor)  # detail 10
        self.optimizer = make_adam([self.params.flat], cfg.learning_rate, device)
        self.policy = DeployedPolicy(self.normalizer, self.actor, action_low, action_high)
        self.freeze: FreezeSchedule | None = None
        self.anchor: ActorCritic | None = None
        self.n_updates = 0
        self.n_rollouts = 0

    @torch.no_grad()
    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """An unclipped sampled action for raw observations (detail 2). V and log pi come later, batched."""
        return self.actor.sample_action(self.normalizer(obs))

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V of raw observations (the runner bootstraps truncated episodes with it)."""
        return self.actor.value(self.normalizer(obs))

    def update(self, rollout: RolloutBuffer) -> dict[str, torch.Tensor]:
        """Score the finished rollout (V, log pi, GAE), then n_epochs passes of minibatch updates.

        The policy did not change while the rollout was collected, so V(s) and log pi(a|s) of every
        stored step are computed here in one batched pass instead of one call per env step (detail 9).
        `rollout.last_obs` (the policy input after the last step) bootstraps the unfinished episodes.
        """
        cfg = self.cfg
        self._score_rollout(rollout)
        policy_on = self.n_rollouts >= cfg.actor_learning_starts  # detail 11
        self.n_rollouts += 1
        sums: dict[str, torch.Tensor] = {}
        n_minibatches = 0
        for _ in range(cfg.n_epochs):
            epoch_kl = torch.zeros((), device=self.device)
            epoch_minibatches = 0
            for mb in rollout.minibatches(cfg.batch_size):
                stats = self._update_minibatch(mb, policy_on)
                for key, value in stats.items():
                    sums[key] = sums[key] + value if key in sums else value
                epoch_kl = epoch_kl + stats[metrics.APPROX_KL]
                epoch_minibatches += 1
            n_minibatches += epoch_minibatches
            self.n_updates += 1
            if cfg.target_kl is not None and bool(epoch_kl / epoch_minibatches > 1.5 * cfg.target_kl):
                break  # host sync, once per epoch (detail 8)
        out = {key: total / n_minibatches for key, total in sums.items()}
        out[metrics.EXPLAINED_VARIANCE] = explained_variance(rollout.values.flatten(), rollout.returns.flatten())
        out[metrics.STD] = self.actor.log_std.detach().exp().mean()
        return out

    @torch.no_grad()
    def _score_rollout(self, rollout: RolloutBuffer) -> None:
        steps, envs = rollout.rewards.shape
        obs, actions = rollout.obs.reshape(steps * envs, -1), rollout.actions.reshape(steps * envs, -1)
        rollout.values.copy_(self.actor.value(obs).reshape(steps, envs))
        rollout.log_probs.copy_(self.actor.log_prob(obs, actions).reshape(steps, envs))
        rollout.compute_returns_and_advantages(self.actor.value(rollout.last_obs), self.cfg.gamma,
                                                 self.cfg.gae_lambda)

    def _update_minibatch(self, mb: RolloutBatch, policy_on: bool = True) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        mean = self.actor.mean(mb.obs)
        log_prob = self.actor.log_prob_at(mean, mb.actions)
        values = self.actor.value(mb.obs)

        advantages = mb.advantages
        if cfg.normalize_advantage and len(advantages) > 1:
            advantages = normalize_advantages(advantages)
        log_ratio = log_prob - mb.log_probs
        policy_loss = clipped_policy_loss(advantages, log_ratio, cfg.clip_range)
        v_loss = value_loss(values, mb.values, mb.returns, cfg.clip_range_vf)
        entropy_loss = -self.actor.entropy()
        if not policy_on:  # detail 11: the value function alone
            loss = cfg.vf_coef * v_loss
        else:
            loss = policy_loss + cfg.ent_coef * entropy_loss + cfg.vf_coef * v_loss
            if cfg.anchor_coef > 0 and self.anchor is not None:  # detail 12
                with torch.no_grad():
                    anchor_mean = self.anchor.mean(mb.obs)
                loss = loss + cfg.anchor_coef * anchor_mse(mean, anchor_mean)

        self.params.zero_grad()
        loss.backward()
        self.params.clip_grad_norm(cfg.max_grad_norm)
        self.optimizer.step()

        with torch.no_grad():
            ratio = log_ratio.exp()
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clip_fraction = ((ratio - 1).abs() > cfg.clip_range).float().mean()
        return {
            metrics.POLICY_GRADIENT_LOSS: policy_loss.detach(), metrics.VALUE_LOSS: v_loss.detach(),
            metrics.ENTROPY_LOSS: entropy_loss.detach(), metrics.LOSS: loss.detach(),
            metrics.APPROX_KL: approx_kl, metrics.CLIP_FRACTION: clip_fraction,
        }

    def zero_action_head(self) -> None:
        """Make the deterministic action 0 on every observation (a residual policy starts as its base policy)."""
        zero_layer(self.actor.action_head())

    def set_anchor(self) -> None:
        """Keep a frozen copy of the current policy (a warm start) as the anchor of detail 12."""
        self.anchor = frozen_copy(self.actor)

    def set_freeze(self, n_layers: int, until_step: int) -> FreezeSchedule:
        """Freeze the first n Linear layers of policy_net, then action_net (never the value network)."""
        self.freeze = FreezeSchedule(self.actor.trunk(), n_layers, until_step)
        return self.freeze

    def optimizers(self) -> list[Adam | torch.optim.Optimizer]:
        return [self.optimizer]

    def state_dict(self) -> dict:
        return {
            "model": self.actor.state_dict(),  # the key checkpoints have always had for the network
            "optimizer": self.optimizer.state_dict(),
            "normalizer": self.normalizer.state_dict(), "n_updates": self.n_updates, "n_rollouts": self.n_rollouts,
            **fine_tuning_state(self),
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.normalizer.load_state_dict(state["normalizer"])
        self.n_updates = state["n_updates"]
        self.n_rollouts = state.get("n_rollouts", 0)
        load_fine_tuning_state(self, state)
