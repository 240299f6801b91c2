"""TD3: Twin Delayed Deep Deterministic policy gradient (Fujimoto, van Hoof, Meger 2018, arXiv:1802.09477).

Implementation details:
1. Twin critics; the TD target uses the minimum of the two target critics (clipped double Q).
2. Target policy smoothing: target action = clip(actor_target(s') + clip(N(0, 0.2), -0.5, 0.5), -1, 1).
3. Delayed updates: the actor and BOTH target networks are updated every `policy_delay` critic updates
   (as SB3; the paper also delays the critic targets).
4. Critic loss = MSE(q1, y) + MSE(q2, y) (SB3's sum over critics).
5. The actor loss -Q1(s, pi(s)) back-propagates through the critic without computing critic parameter
   gradients (critic params are switched off for that pass), which SB3 computes and discards.
6. Terminated transitions do not bootstrap; truncated ones do (their next_obs is the true final obs).
7. Exploration: Gaussian noise of std `exploration_noise` on the [-1, 1] action, clipped (SB3: none by default).
8. Optional critic-only start: for the first `actor_learning_starts` gradient steps the actor and its target
   stay put while the critic (and its target) learn; for warm-started actors (default 0 = SB3).
9. Optional TD3+BC regularisation (Fujimoto & Gu 2021): with bc_coef > 0 the actor loss is
   -Q / max(mean|Q|, 1) + bc_coef * MSE(pi(s), a) over the batch's demonstration rows (Q is only scaled
   down: with near-zero rewards mean|Q| is tiny, and dividing by it would amplify the critic's noise).
10. Optional warm-start anchor: after `set_anchor()` (a frozen copy of the current, e.g. BC, actor) and with
   anchor_coef > 0 the actor loss adds anchor_coef * MSE(pi(s), pi_anchor(s)) over EVERY batch row, Q scaled
   as in 9. The demonstration term constrains only demonstration states; this one keeps the fine-tuned actor
   near its start wherever the critic's early, uninformed gradient would push it.
11. `precision` bf16: the hidden layers of every network pass in the update run as bf16 products; weights,
   gradients, Adam state, targets, Polyak averages, the Q and action heads and the losses stay fp32
   (rlcore/networks.py). Acting (`explore`) and the deployed policy are fp32.
12. `cuda_graphs`: the update after the Python-side decisions (delayed step or not, actor started or not) is
   replayed from one CUDA graph per variant (rlcore/graphs.py); Adam is built capturable for it.

Metrics: train/critic_loss every update; train/actor_loss on delayed steps.
"""

from __future__ import annotations

import numpy as np
import torch

from rlcore import metrics
from rlcore.algos.protocol import fine_tuning_state, load_fine_tuning_state
from rlcore.buffers import Batch
from rlcore.config import TD3Config
from rlcore.freeze import FreezeSchedule
from rlcore.graphs import GraphedStep
from rlcore.losses import anchor_mse, demo_mse, regularised_actor_loss
from rlcore.networks import TD3Actor, TwinCritic, zero_layer
from rlcore.normalizer import RunningNormalizer
from rlcore.optim import Adam, adam_step, clear_grads, frozen_copy, make_adam, set_requires_grad, soft_update
from rlcore.policy import DeployedPolicy
from rlcore.precision import compute_dtype


class TD3:
    """TD3 learner; acts and learns in the [-1, 1] action space."""

    name = "td3"
    on_policy = False

    def __init__(self, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: TD3Config,
                 device: torch.device) -> None:
        act_dim = len(action_low)
        self.cfg = cfg
        self.device = device
        self.dtype = compute_dtype(cfg.precision, device)  # detail 11
        self.graphs = GraphedStep(self._step, device) if cfg.cuda_graphs else None  # detail 12
        self.normalizer = RunningNormalizer((obs_dim,), cfg.obs_norm, device)
        self.actor = TD3Actor(obs_dim, act_dim, cfg.net).to(device)
        self.actor_target = frozen_copy(self.actor)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.net).to(device)
        self.critic_target = frozen_copy(self.critic)
        self._params = {name: list(getattr(self, name).parameters())  # looked up once (rlcore.optim.soft_update)
                        for name in ("actor", "actor_target", "critic", "critic_target")}
        self.actor_optimizer = make_adam(self.actor.parameters(), cfg.learning_rate, device, cfg.cuda_graphs)
        self.critic_optimizer = make_adam(self.critic.parameters(), cfg.learning_rate, device, cfg.cuda_graphs)
        self.policy = DeployedPolicy(self.normalizer, self.actor, action_low, action_high)
        self.freeze: FreezeSchedule | None = None
        self.anchor: TD3Actor | None = None
        self.n_updates = 0

    @torch.no_grad()
    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Acting action for raw observations: deterministic action plus clipped Gaussian noise."""
        action = self.actor(self.normalizer(obs))
        if self.cfg.exploration_noise > 0:
            action = action + self.cfg.exploration_noise * torch.randn_like(action)
        return action.clamp(-1.0, 1.0)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One critic step and, every `policy_delay` calls, one actor step plus target updates."""
        self.n_updates += 1
        delayed = self.n_updates % self.cfg.policy_delay == 0
        actor_step = delayed and self.n_updates > self.cfg.actor_learning_starts  # detail 8
        if self.graphs is not None:  # detail 12: the variant names everything that changes the captured ops
            return self.graphs(batch, (delayed, actor_step, self.anchor is not None, self._trainable()),
                               delayed, actor_step)
        return self._step(batch, delayed, actor_step)

    def _step(self, batch: Batch, delayed: bool, actor_step: bool) -> dict[str, torch.Tensor]:
        """The update's tensor work once its Python-side decisions are made (what a CUDA graph captures)."""
        out = {metrics.CRITIC_LOSS: self._update_critic(batch)}
        if delayed:
            if actor_step:
                out[metrics.ACTOR_LOSS] = self._update_actor(batch)
                soft_update(self._params["actor_target"], self._params["actor"], self.cfg.tau)
            soft_update(self._params["critic_target"], self._params["critic"], self.cfg.tau)
        return out

    def _trainable(self) -> tuple[bool, ...]:
        """Which actor parameters train now (the freeze schedule changes it, and with it the captured step)."""
        return tuple(p.requires_grad for p in self.actor.parameters())

    @torch.no_grad()
    def _q_target(self, batch: Batch) -> torch.Tensor:
        """y = r + gamma (1 - terminated) min Q'(s', clip(pi'(s') + clip(noise)))  (details 1, 2, 6)."""
        cfg = self.cfg
        noise = (torch.randn_like(batch.actions) * cfg.target_policy_noise).clamp(
            -cfg.target_noise_clip, cfg.target_noise_clip)
        next_actions = (self.actor_target(batch.next_obs, self.dtype) + noise).clamp(-1.0, 1.0)
        q1_next, q2_next = self.critic_target(batch.next_obs, next_actions, self.dtype)
        return batch.rewards + cfg.gamma * (1.0 - batch.terminated) * torch.minimum(q1_next, q2_next)

    def _update_critic(self, batch: Batch) -> torch.Tensor:
        q_target = self._q_target(batch)
        clear_grads(self.critic_optimizer)
        critic_loss = self.critic.regression_backward(batch.obs, batch.actions, q_target, self.dtype, 1.0)
        adam_step(self.critic_optimizer)
        return critic_loss

    def _update_actor(self, batch: Batch) -> torch.Tensor:
        set_requires_grad(self._params["critic"], False)  # gradients flow to the action only (detail 5)
        actions = self.actor(batch.obs, self.dtype)
        q1 = self.critic.q1(batch.obs, actions, self.dtype)
        set_requires_grad(self._params["critic"], True)
        bc_term = anchor_term = None
        if self.cfg.bc_coef > 0 and batch.demo is not None:  # detail 9
            bc_term = demo_mse(actions, batch.actions, batch.demo)
        if self.cfg.anchor_coef > 0 and self.anchor is not None:  # detail 10
            with torch.no_grad():
                anchor_actions = self.anchor(batch.obs, self.dtype)
            anchor_term = anchor_mse(actions, anchor_actions)
        actor_loss = regularised_actor_loss(q1, -q1.mean(), bc_term, anchor_term, self.cfg.bc_coef,
                                            self.cfg.anchor_coef)
        clear_grads(self.actor_optimizer)
        actor_loss.backward()
        adam_step(self.actor_optimizer)
        return actor_loss.detach()

    def zero_action_head(self) -> None:
        """Make the deterministic action 0 on every observation (a residual policy starts as its base policy)."""
        zero_layer(self.actor.action_head())
        self.actor_target.load_state_dict(self.actor.state_dict())

    def set_anchor(self) -> None:
        """Keep a frozen copy of the current actor (a warm start) as the anchor of detail 10."""
        self.anchor = frozen_copy(self.actor)
        if self.graphs is not None:
            self.graphs.reset()

    def set_freeze(self, n_layers: int, until_step: int) -> FreezeSchedule:
        """Freeze the first n Linear layers of the actor (mu); the target copy follows the actor."""
        self.freeze = FreezeSchedule(self.actor.trunk(), n_layers, until_step)
        return self.freeze

    def optimizers(self) -> list[Adam | torch.optim.Optimizer]:
        return [self.actor_optimizer, self.critic_optimizer]

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(), "actor_target": self.actor_target.state_dict(),
            "critic": self.critic.state_dict(), "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "normalizer": self.normalizer.state_dict(), "n_updates": self.n_updates,
            **fine_tuning_state(self),
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        if self.graphs is not None:  # the captured steps hold the optimiser state tensors just replaced
            self.graphs.reset()
        self.normalizer.load_state_dict(state["normalizer"])
        self.n_updates = state["n_updates"]
        load_fine_tuning_state(self, state)
