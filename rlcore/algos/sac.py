"""SAC: Soft Actor-Critic with automatic entropy tuning (Haarnoja et al. 2018, arXiv:1812.05905).

Implementation details:
1. Squashed Gaussian actor a = tanh(u); log pi(a) = log N(u) - sum log(1 - tanh(u)^2), computed with the
   stable identity 2 (log 2 - u - softplus(-2u)) (paper appendix C). log std is a Linear head clamped
   to [-20, 2] (SB3).
2. Twin critics, clipped double-Q soft target: y = r + gamma (1 - terminated) (min Q'(s', a') - alpha log pi(a'|s')),
   a' ~ pi(s'). Critic loss = 0.5 (MSE(q1, y) + MSE(q2, y)) (SB3).
3. Actor loss = mean(alpha log pi(a|s) - min Q(s, a)), a ~ pi(s) reparameterised; the critic's
   parameters get no gradient in that pass.
4. Entropy coefficient: alpha = exp(log_alpha), loss = -mean(log_alpha (log pi + target_entropy)) with
   target_entropy = -dim(A) (SB3 "auto", alpha starts at 1.0). Optional floor `ent_coef_min` clamps
   log_alpha in place (the seed's EntropyFloorCallback, without a host sync). A fixed `ent_coef`
   disables tuning.
5. Order inside one update: critic, actor, alpha (CleanRL); the alpha used by the critic and actor
   losses is the value before this update's alpha step (as SB3).
6. Target critics are Polyak-averaged every `target_update_interval` gradient steps; there is no target actor.
7. Optional critic-only start: the actor and alpha wait `actor_learning_starts` gradient steps (for
   warm-started actors; default 0 = SB3).
8. Optional BC regularisation on demonstration rows, as TD3's detail 9 (the sampled action is cloned).
9. Optional warm-start anchor, as TD3's detail 10, on the deterministic action tanh(mean) (anchoring the
   sample would also penalise the policy's spread, fighting the entropy term).
10. `precision` bf16 and `cuda_graphs`: as TD3's details 11 and 12 (the log-probability and the entropy
   terms are computed in fp32 from the fp32 heads). alpha is one device tensor changed in place, so a
   captured step reads the current value.

Metrics: train/critic_loss, train/actor_loss, train/ent_coef, train/ent_coef_loss (auto only).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rlcore import metrics
from rlcore.algos.protocol import fine_tuning_state, load_fine_tuning_state
from rlcore.buffers import Batch
from rlcore.config import SACConfig
from rlcore.freeze import FreezeSchedule
from rlcore.graphs import GraphedStep
from rlcore.losses import anchor_mse, demo_mse, regularised_actor_loss
from rlcore.networks import SACActor, TwinCritic, squashed_sample, zero_layer
from rlcore.normalizer import RunningNormalizer
from rlcore.optim import Adam, adam_step, clear_grads, frozen_copy, make_adam, set_requires_grad, soft_update
from rlcore.policy import DeployedPolicy
from rlcore.precision import compute_dtype


class SAC:
    """SAC learner; acts and learns in the [-1, 1] action space."""

    name = "sac"
    on_policy = False

    def __init__(self, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: SACConfig,
                 device: torch.device) -> None:
        act_dim = len(action_low)
        self.cfg = cfg
        self.device = device
        self.dtype = compute_dtype(cfg.precision, device)  # detail 10
        self.graphs = GraphedStep(self._step, device) if cfg.cuda_graphs else None
        self.normalizer = RunningNormalizer((obs_dim,), cfg.obs_norm, device)
        self.actor = SACActor(obs_dim, act_dim, cfg.net, cfg.log_std_min, cfg.log_std_max).to(device)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.net).to(device)
        self.critic_target = frozen_copy(self.critic)
        self._params = {name: list(getattr(self, name).parameters())  # looked up once (rlcore.optim.soft_update)
                        for name in ("critic", "critic_target")}
        self.actor_optimizer = make_adam(self.actor.parameters(), cfg.learning_rate, device, cfg.cuda_graphs)
        self.critic_optimizer = make_adam(self.critic.parameters(), cfg.learning_rate, device, cfg.cuda_graphs)
        init = cfg.ent_coef_init if cfg.auto_entropy else max(cfg.ent_coef, 1e-30)
        self.log_alpha = torch.tensor(math.log(init), device=device, requires_grad=cfg.auto_entropy)
        self.alpha = self.log_alpha.detach().exp()
        self.alpha_optimizer = (make_adam([self.log_alpha], cfg.learning_rate, device, cfg.cuda_graphs)
                                if cfg.auto_entropy else None)
        self.target_entropy = float(cfg.target_entropy if cfg.target_entropy is not None else -act_dim)
        self.log_alpha_min = math.log(cfg.ent_coef_min) if cfg.ent_coef_min else None
        self.policy = DeployedPolicy(self.normalizer, self.actor, action_low, action_high)
        self.freeze: FreezeSchedule | None = None
        self.anchor: SACActor | None = None
        self.n_updates = 0

    @torch.no_grad()
    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """A stochastic squashed action for raw observations."""
        action, _ = self.actor.sample(self.normalizer(obs))
        return action

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Critic step, actor step, alpha step, then (every interval) the target update."""
        self.n_updates += 1
        actor_step = self.n_updates > self.cfg.actor_learning_starts  # detail 7
        target_step = self.n_updates % self.cfg.target_update_interval == 0
        if self.graphs is not None:  # the variant names everything that changes the captured ops
            return self.graphs(batch, (actor_step, target_step, self.anchor is not None, self._trainable()),
                               actor_step, target_step)
        return self._step(batch, actor_step, target_step)

    def _step(self, batch: Batch, actor_step: bool, target_step: bool) -> dict[str, torch.Tensor]:
        """The update's tensor work once its Python-side decisions are made (what a CUDA graph captures)."""
        alpha = self.alpha.clone()  # the value before this update's alpha step (detail 5; alpha changes in place)
        out = {metrics.CRITIC_LOSS: self._update_critic(batch, alpha), metrics.ENT_COEF: alpha}
        if actor_step:
            actor_loss, log_prob = self._update_actor(batch, alpha)
            out[metrics.ACTOR_LOSS] = actor_loss
            if self.alpha_optimizer is not None:
                out[metrics.ENT_COEF_LOSS] = self._update_alpha(log_prob)
        if target_step:
            soft_update(self._params["critic_target"], self._params["critic"], self.cfg.tau)
        return out

    def _trainable(self) -> tuple[bool, ...]:
        """Which actor parameters train now (the freeze schedule changes it, and with it the captured step)."""
        return tuple(p.requires_grad for p in self.actor.parameters())

    @torch.no_grad()
    def _q_target(self, batch: Batch, alpha: torch.Tensor) -> torch.Tensor:
        """y = r + gamma (1 - terminated) (min Q'(s', a') - alpha log pi(a'|s')), a' ~ pi(s') (detail 2)."""
        next_actions, next_log_prob = self.actor.sample(batch.next_obs, self.dtype)
        q1_next, q2_next = self.critic_target(batch.next_obs, next_actions, self.dtype)
        soft_q_next = torch.minimum(q1_next, q2_next) - alpha * next_log_prob
        return batch.rewards + self.cfg.gamma * (1.0 - batch.terminated) * soft_q_next

    def _update_critic(self, batch: Batch, alpha: torch.Tensor) -> torch.Tensor:
        q_target = self._q_target(batch, alpha)
        clear_grads(self.critic_optimizer)
        critic_loss = self.critic.regression_backward(batch.obs, batch.actions, q_target, self.dtype, 0.5)
        adam_step(self.critic_optimizer)
        return critic_loss

    def _update_actor(self, batch: Batch, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(batch.obs, self.dtype)
        actions, log_prob = squashed_sample(mean, log_std)
        set_requires_grad(self._params["critic"], False)  # gradients flow to the action only (detail 3)
        q1, q2 = self.critic(batch.obs, actions, self.dtype)
        set_requires_grad(self._params["critic"], True)
        q = torch.minimum(q1, q2)
        bc_term = anchor_term = None
        if self.cfg.bc_coef > 0 and batch.demo is not None:  # detail 8
            bc_term = demo_mse(actions, batch.actions, batch.demo)
        if self.cfg.anchor_coef > 0 and self.anchor is not None:  # detail 9
            with torch.no_grad():
                anchor_actions = torch.tanh(self.anchor(batch.obs, self.dtype)[0])
            anchor_term = anchor_mse(torch.tanh(mean), anchor_actions)
        actor_loss = regularised_actor_loss(q, (alpha * log_prob - q).mean(), bc_term, anchor_term,
                                            self.cfg.bc_coef, self.cfg.anchor_coef)
        clear_grads(self.actor_optimizer)
        actor_loss.backward()
        adam_step(self.actor_optimizer)
        return actor_loss.detach(), log_prob.detach()

    def _update_alpha(self, log_prob: torch.Tensor) -> torch.Tensor:
        alpha_loss = -(self.log_alpha * (log_prob + self.target_entropy)).mean()
        clear_grads(self.alpha_optimizer)
        alpha_loss.backward()
        adam_step(self.alpha_optimizer)
        with torch.no_grad():
            if self.log_alpha_min is not None:
                self.log_alpha.clamp_(min=self.log_alpha_min)
            self.alpha.copy_(self.log_alpha.exp())
        return alpha_loss.detach()

    def zero_action_head(self) -> None:
        """Make the deterministic action 0 on every observation (a residual policy starts as its base policy)."""
        zero_layer(self.actor.action_head())

    def set_anchor(self) -> None:
        """Keep a frozen copy of the current actor (a warm start) as the anchor of detail 9."""
        self.anchor = frozen_copy(self.actor)
        if self.graphs is not None:
            self.graphs.reset()

    def set_freeze(self, n_layers: int, until_step: int) -> FreezeSchedule:
        """Freeze the first n Linear layers of latent_pi, then the mean and log-std heads."""
        self.freeze = FreezeSchedule(self.actor.trunk(), n_layers, until_step)
        return self.freeze

    def optimizers(self) -> list[Adam | torch.optim.Optimizer]:
        return [o for o in (self.actor_optimizer, self.critic_optimizer, self.alpha_optimizer) if o is not None]

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict() if self.alpha_optimizer else None,
            "log_alpha": self.log_alpha.detach().clone(), "normalizer": self.normalizer.state_dict(),
            "n_updates": self.n_updates, **fine_tuning_state(self),
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
            self.alpha.copy_(self.log_alpha.exp())
        if self.graphs is not None:  # the captured steps hold the optimiser state tensors just replaced
            self.graphs.reset()
        self.normalizer.load_state_dict(state["normalizer"])
        self.n_updates = state["n_updates"]
        load_fine_tuning_state(self, state)
