"""Optimiser and target-network helpers shared by every algorithm (written once, docs/design.md)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

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


def adam_step(optimizer: torch.optim.Adam) -> None:
    """`optimizer.step()` of a fused Adam, without the per-call Python bookkeeping around its two kernels.

    step() wraps `_foreach_add_(steps, 1)` and `_fused_adam_` in profiler hooks, state checks and grouping by
    device and dtype: ~0.1 ms per call on this project's CPU, three calls per SAC update, when the whole bf16
    update takes ~8 ms. Here the same two kernels run on the same lists in the same order (parameters with a
    gradient, group order), so the result is bitwise step()'s (tests/test_rlcore_algos.py). Anything else (a
    parameter's first step, which creates its state; several groups; capturable, amsgrad, a tensor lr) goes
    through step().
    """
    group = optimizer.param_groups[0]
    if (len(optimizer.param_groups) != 1 or not group.get("fused") or group["capturable"] or group["amsgrad"]
            or group["maximize"] or group["differentiable"] or group.get("decoupled_weight_decay")
            or isinstance(group["lr"], torch.Tensor)):
        optimizer.step()
        return
    params = [p for p in group["params"] if p.grad is not None]
    states = [optimizer.state.get(p) for p in params]
    if not all(states):
        optimizer.step()
        return
    steps = [s["step"] for s in states]
    if len(params) == len(group["params"]):
        _counters(states, steps).add_(1)
        steps = [s["step"] for s in states]  # the views, where the counters were linked just now
    else:
        torch._foreach_add_(steps, 1)
    beta1, beta2 = group["betas"]
    torch._fused_adam_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                       [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                       beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                       grad_scale=None, found_inf=None)


def _counters(states: list[dict], steps: list[torch.Tensor]) -> torch.Tensor:
    """One tensor whose elements are the states' step counters, each state's "step" a 0-dim view of its element.

    `torch._foreach_add_(steps, 1)` on a CPU costs ~3.5 us per tensor (43 us for a twin critic's 12), one add on
    the shared tensor ~2 us. The views behave as the separate counters did everywhere (step(), a frozen parameter's
    counter left alone, state_dict and its load), so only this fast path knows about the sharing. The counters are
    made views on first use, with their values; a state replaced since (a load) is linked again.
    """
    base = steps[0]._base
    if (base is not None and base.dim() == 1 and base.shape[0] == len(steps)
            and all(t._base is base and t.storage_offset() == i for i, t in enumerate(steps))):
        return base
    base = torch.stack([t.detach().reshape(()) for t in steps])
    for i, state in enumerate(states):
        state["step"] = base[i]
    return base


def clear_grads(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.zero_grad(set_to_none=True)` without its profiler hook: every gradient set to None."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = None


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
def soft_update(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor], tau: float) -> None:
    """target <- target + tau (source - target) over all parameters in one fused call (Polyak).

    Takes the parameter lists, looked up once by the algorithm: `module.parameters()` walks the module tree
    on every call, which cost more than the lerp kernel itself on a CPU.
    """
    torch._foreach_lerp_(list(targets), list(sources), tau)


def set_requires_grad(params: Sequence[torch.Tensor], requires_grad: bool) -> None:
    """`module.requires_grad_(flag)` over an already looked-up parameter list (see soft_update)."""
    for p in params:
        p.requires_grad_(requires_grad)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off, used as a target network."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target
