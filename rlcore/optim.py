"""Optimiser and target-network helpers shared by every algorithm (written once, docs/design.md)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device,
              capturable: bool = False) -> Adam | torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters instead of a loop): ours (Adam below) on the CPU
    and the meta device (checkpoint checks), torch's on CUDA (with `capturable`, CUDA graphs, the step counts stay
    on the device so a captured step can replay) and elsewhere.

    Parameters that get no gradient (frozen ones) are skipped by the fused kernel as by the loop one.
    """
    params = list(params)
    if device.type in ("cpu", "meta") and not capturable:
        return Adam(params, lr)
    if device.type != "cuda":
        return torch.optim.Adam(params, lr=lr)
    if capturable:
        return torch.optim.Adam(params, lr=lr, fused=True, capturable=True)
    return torch.optim.Adam(params, lr=lr, fused=True)


TORCH_ADAM_DEFAULTS = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False, "maximize": False,
                       "foreach": None, "capturable": False, "differentiable": False, "fused": None,
                       "decoupled_weight_decay": False}
"""torch.optim.Adam(params, lr)'s parameter-group settings besides lr, as its state_dict stores them (torch 2.13;
tests/test_rlcore_algos.py compares them with the installed torch's)."""

GROUP_DEFAULTS = {**TORCH_ADAM_DEFAULTS, "fused": True}
"""Our Adam's settings: torch.optim.Adam(fused=True)'s. Its state_dict is torch's, so checkpoints load into
either."""


def fresh_adam_state(n_params: int, lr: float) -> dict[str, Any]:
    """The state_dict of a torch.optim.Adam(n_params parameters, lr) that has never stepped (what an SB3 zip
    carries), without building one (that would import torch._dynamo)."""
    return {"state": {}, "param_groups": [{"lr": lr, **TORCH_ADAM_DEFAULTS, "params": list(range(n_params))}]}


STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")


class Adam:
    """torch.optim.Adam(fused=True) on one parameter group, the same kernel on the same lists, without torch.optim.

    Why: building a torch.optim optimizer imports torch._dynamo (its methods are wrapped to keep the compiler out),
    ~1.0-1.6 s of every run's start on this project's CPU, before the first step; and step() wraps its two
    kernels in profiler hooks, state checks and grouping by device and dtype (~0.1 ms per call). Here a step is
    `_foreach_add_` on the step counters (one add on a shared tensor, _counters) and `_fused_adam_`, as in
    torch's fused path, so parameters, moments and counters are bitwise torch's; state_dict and load_state_dict
    use torch's format. Only plain Adam (no amsgrad, maximize or weight decay) on non-capturable tensors.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.param_groups = [{"params": params, "lr": lr, **GROUP_DEFAULTS}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Every gradient set to None (or zeroed in place with set_to_none=False)."""
        for p in self.param_groups[0]["params"]:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every parameter with a gradient (torch creates a parameter's state at its first)."""
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        for p in params:
            if p not in self.state:
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        _fused_step(group, params, [self.state[p] for p in params])

    def state_dict(self) -> dict[str, Any]:
        """torch's format: {"state": {index: {step, exp_avg, exp_avg_sq}}, "param_groups": [settings, params as
        indices]}, the tensors themselves (torch does not copy them either)."""
        group = self.param_groups[0]
        index = {id(p): i for i, p in enumerate(group["params"])}
        return {"state": {index[id(p)]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**{k: v for k, v in group.items() if k != "params"},
                                  "params": list(range(len(group["params"])))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load torch's format (ours or torch.optim.Adam's), checked first: ValueError on anything else (a group
        count or size, an index, a key or a moment's shape that does not fit, settings this Adam does not run)."""
        params = self.param_groups[0]["params"]
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("state"), dict):
            raise ValueError("optimizer state: expected a dict with 'state' and 'param_groups'")
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise ValueError("optimizer state: expected one parameter group")
        saved = groups[0]
        if not isinstance(saved.get("params"), list) or len(saved["params"]) != len(params):
            raise ValueError(f"optimizer state: a group of {len(saved.get('params') or [])} parameters for "
                             f"{len(params)}")
        settings = {k: v for k, v in saved.items() if k != "params"}
        if not isinstance(settings.get("lr"), float | int) or any(settings.get(k) for k in ("amsgrad", "maximize")):
            raise ValueError("optimizer state: needs a numeric lr, and no amsgrad or maximize")
        by_index = dict(zip(saved["params"], params, strict=True))
        state = {}
        for index, entry in state_dict["state"].items():
            param = by_index.get(index)
            if param is None or not isinstance(entry, dict) or set(entry) != set(STATE_KEYS):
                raise ValueError(f"optimizer state {index!r}: expected {', '.join(STATE_KEYS)} of a known parameter")
            if not all(isinstance(entry[k], torch.Tensor) for k in STATE_KEYS) or entry["step"].numel() != 1:
                raise ValueError(f"optimizer state {index!r}: expected tensors, one step count")
            for key in ("exp_avg", "exp_avg_sq"):
                if entry[key].shape != param.shape:
                    raise ValueError(f"optimizer state {key} of shape {tuple(entry[key].shape)} for a parameter of "
                                     f"shape {tuple(param.shape)}")
            state[param] = {"step": entry["step"].to(dtype=torch.float32, device=param.device).reshape(()).clone(),
                            **{k: entry[k].to(dtype=param.dtype, device=param.device).clone()
                               for k in ("exp_avg", "exp_avg_sq")}}
        self.state = state
        self.param_groups = [{**GROUP_DEFAULTS, **settings, "params": params}]


def adam_step(optimizer: Adam | torch.optim.Adam) -> None:
    """`optimizer.step()`: ours (Adam) is already lean; torch's fused Adam (CUDA) without the per-call Python
    bookkeeping around its two kernels.

    step() wraps `_foreach_add_(steps, 1)` and `_fused_adam_` in profiler hooks, state checks and grouping by
    device and dtype: ~0.1 ms per call on this project's CPU, three calls per SAC update, when the whole bf16
    update takes ~8 ms. Here the same two kernels run on the same lists in the same order (parameters with a
    gradient, group order), so the result is bitwise step()'s (tests/test_rlcore_algos.py). Anything else (a
    parameter's first step, which creates its state; several groups; capturable, amsgrad, a tensor lr) goes
    through step().
    """
    if isinstance(optimizer, Adam):
        optimizer.step()
        return
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
    _fused_step(group, params, states)


def _fused_step(group: dict[str, Any], params: list[torch.Tensor], states: list[dict[str, torch.Tensor]]) -> None:
    """torch's fused Adam step on the parameters with a gradient and their (existing) states: the step counters
    advanced, then `_fused_adam_` with the group's settings."""
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
