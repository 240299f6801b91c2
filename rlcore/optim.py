"""Optimiser and target-network helpers shared by every algorithm (written once, STYLE rule 2)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device,
              capturable: bool = False) -> torch.optim.Adam:
    """Adam with the fused kernel on CUDA and CPU (one kernel for all parameters instead of a loop).

    Parameters that get no gradient (frozen ones) are skipped by the fused kernel as by the loop one.
    `capturable` (CUDA graphs) keeps the step counts on the device so a captured step can replay.
    """
    params = list(params)
    fused = device.type in ("cuda", "cpu")
    if not fused:
        return torch.optim.Adam(params, lr=lr)
    if capturable:
        return torch.optim.Adam(params, lr=lr, fused=True, capturable=True)
    return torch.optim.Adam(params, lr=lr, fused=True)


class FlatParameters:
    """A module's parameters as views into ONE contiguous tensor, and their gradients likewise.

    Adam and the gradient-norm clip then run on a single tensor instead of one per layer: for small
    networks (PPO's) their per-tensor overhead dominated the minibatch step (bench/ppo_cycle.py). The
    module keeps its own Parameters (names, state_dict, load_state_dict work unchanged); autograd
    accumulates into the gradient views, so `zero_grad` is one fill. A parameter with requires_grad=False
    (a frozen layer) keeps a zero gradient slice, so Adam leaves it and its moments exactly unchanged.
    """

    def __init__(self, module: nn.Module) -> None:
        params = list(module.parameters())
        self.flat = nn.Parameter(torch.cat([p.detach().flatten() for p in params]))
        self.flat.grad = torch.zeros_like(self.flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.data = self.flat.data[offset:offset + n].view_as(p)
            p.grad = self.flat.grad[offset:offset + n].view_as(p)
            offset += n

    def zero_grad(self) -> None:
        self.flat.grad.zero_()

    @torch.no_grad()
    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """torch.nn.utils.clip_grad_norm_ on the one flat gradient (same arithmetic: coefficient
        max_norm / (norm + 1e-6) clamped to 1) in four ops instead of its per-call bookkeeping; returns the
        norm before clipping."""
        norm = torch.linalg.vector_norm(self.flat.grad)
        self.flat.grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
        return norm


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- target + tau (source - target) over all parameters in one fused call (Polyak)."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off, used as a target network."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target
