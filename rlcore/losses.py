"""Loss terms the algorithms share: the behaviour-cloning and warm-start regularisers of the actor.

The TD targets and the actor objectives themselves stay written out in each algorithm file (docs/design.md,
"Math is written out per algorithm"); what is here is the same arithmetic in TD3, SAC and PPO, written once so
the three cannot drift apart.
"""

from __future__ import annotations

import torch


def demo_mse(actions: torch.Tensor, targets: torch.Tensor, demo: torch.Tensor) -> torch.Tensor:
    """Mean squared action error over the demonstration rows (demo = 1) and the action dims (TD3+BC's MSE)."""
    return ((actions - targets).square().mean(-1) * demo).sum() / demo.sum().clamp(min=1.0)


def anchor_mse(actions: torch.Tensor, anchor_actions: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the actor's actions from its frozen warm-start copy's, over every row and dim."""
    return (actions - anchor_actions).square().mean()


def regularised_actor_loss(q: torch.Tensor, policy_loss: torch.Tensor, bc_term: torch.Tensor | None,
                           anchor_term: torch.Tensor | None, bc_coef: float, anchor_coef: float) -> torch.Tensor:
    """policy_loss / max(mean|Q|, 1) + bc_coef * bc_term + anchor_coef * anchor_term, or policy_loss alone when
    no term applies (TD3 details 9 and 10, SAC details 8 and 9)."""
    if bc_term is None and anchor_term is None:
        return policy_loss
    loss = policy_loss / q.abs().mean().detach().clamp(min=1.0)
    if bc_term is not None:
        loss = loss + bc_coef * bc_term
    if anchor_term is not None:
        loss = loss + anchor_coef * anchor_term
    return loss
