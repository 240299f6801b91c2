"""Optimiser and target-network helpers shared by every algorithm (written once, STYLE rule 2)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel on CUDA and CPU (one kernel for all parameters instead of a loop).

    Parameters that get no gradient (frozen ones) are skipped by the fused kernel as by the loop one.
    """
    params = list(params)
    fused = device.type in ("cuda", "cpu")
    return torch.optim.Adam(params, lr=lr, fused=fused) if fused else torch.optim.Adam(params, lr=lr)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- target + tau (source - target) over all parameters in one fused call (Polyak)."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off, used as a target network."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Change the learning rate of every parameter group (resume with a new --lr)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
