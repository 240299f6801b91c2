"""Running mean/std of observations, on the training device (SB3 VecNormalize semantics, obs only).

Statistics are float64 accumulators merged with the parallel-variance formula (Chan et al. 1979):
for a batch with mean m_b, population variance v_b and count n_b,
    delta = m_b - mean,  n = count + n_b
    mean <- mean + delta * n_b / n
    var  <- (var * count + v_b * n_b + delta^2 * count * n_b / n) / n
    count <- n
starting from mean 0, var 1, count 1e-4 (SB3's RunningMeanStd). Normalising is the pure call
clip((x - mean) / sqrt(var + eps), -clip, clip), the training formula, used everywhere the policy acts
(the seed pipeline dropped the clip at evaluation: docs/seed_pipeline.md, fix 9).

Statistics from a file are checked before they are used (`check_stats`, called by `load_stats` and
`load_state_dict`): NaN means or a negative variance would otherwise turn every action into NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rlcore.config import ObsNormConfig


def _positive(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _vector(value: Any, name: str) -> torch.Tensor:
    try:
        vector = torch.as_tensor(value, dtype=torch.float64, device="cpu")
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise ValueError(f"{name} must be a list of numbers") from None
    if vector.ndim != 1 or len(vector) == 0:
        raise ValueError(f"{name} must be a non-empty 1-d list of numbers, got shape {tuple(vector.shape)}")
    if not torch.isfinite(vector).all():
        raise ValueError(f"{name} has NaN or inf entries")
    return vector


def check_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """`stats` (RunningNormalizer.stats() form; mean and var as lists, arrays or tensors) checked and made plain.

    ValueError naming the first problem: a missing field, mean and var not finite 1-d vectors of one shape,
    a negative variance, count, clip or epsilon not finite and > 0, enabled not a bool.
    """
    if not isinstance(stats, Mapping):
        raise ValueError(f"normaliser statistics must be a mapping, got {type(stats).__name__}")
    missing = [key for key in ("mean", "var", "count") if key not in stats]
    if missing:
        raise ValueError(f"normaliser statistics lack {', '.join(missing)}")
    mean, var = _vector(stats["mean"], "mean"), _vector(stats["var"], "var")
    if mean.shape != var.shape:
        raise ValueError(f"mean and var differ in shape: {tuple(mean.shape)} and {tuple(var.shape)}")
    if (var < 0).any():
        raise ValueError(f"var must be >= 0, got {float(var.min()):g}")
    enabled = stats.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be true or false, got {enabled!r}")
    return {"enabled": enabled, "mean": mean.tolist(), "var": var.tolist(),
            "count": _positive(stats["count"], "count"), "clip": _positive(stats.get("clip", 10.0), "clip"),
            "epsilon": _positive(stats.get("epsilon", 1e-8), "epsilon")}


class RunningNormalizer(nn.Module):
    """Observation normaliser; identity when disabled. Its buffers are saved with every model."""

    def __init__(self, shape: tuple[int, ...], cfg: ObsNormConfig, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.enabled = cfg.enabled
        self.clip = cfg.clip
        self.epsilon = cfg.epsilon
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64, device=device))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64, device=device))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64, device=device))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge a batch (B, *shape) into the statistics (no-op when disabled)."""
        if not self.enabled:
            return
        x = batch.to(torch.float64).reshape(-1, *self.mean.shape)
        n_b = x.shape[0]
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        delta = batch_mean - self.mean
        total = self.count + n_b
        self.var.mul_(self.count).add_(batch_var * n_b + delta.square() * self.count * n_b / total).div_(total)
        self.mean.add_(delta * n_b / total)
        self.count.copy_(total)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised, clipped observations in the input's dtype (identity when disabled)."""
        if not self.enabled:
            return obs
        scaled = (obs - self.mean.to(obs.dtype)) / torch.sqrt(self.var + self.epsilon).to(obs.dtype)
        return scaled.clamp(-self.clip, self.clip)

    def get_extra_state(self) -> dict[str, float | bool]:
        """Saved in state_dict so a loaded normaliser behaves as the one that was saved."""
        return {"enabled": self.enabled, "clip": self.clip, "epsilon": self.epsilon}

    def set_extra_state(self, state: dict[str, float | bool]) -> None:
        if not isinstance(state, Mapping) or not isinstance(state.get("enabled"), bool):
            raise ValueError(f"normaliser settings must hold enabled, clip and epsilon, got {state!r}"[:200])
        self.enabled = state["enabled"]
        self.clip = _positive(state.get("clip"), "clip")
        self.epsilon = _positive(state.get("epsilon"), "epsilon")

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """nn.Module.load_state_dict after `check_stats` (ValueError on statistics that are not usable)."""
        if not isinstance(state_dict, Mapping) or not isinstance(state_dict.get("_extra_state"), Mapping):
            raise ValueError("normaliser state lacks its settings (_extra_state)")
        if any(not isinstance(state_dict.get(k), torch.Tensor) for k in ("mean", "var", "count")):
            raise ValueError("normaliser state must hold mean, var and count tensors")
        stats = check_stats({**state_dict["_extra_state"], **{k: state_dict[k] for k in ("mean", "var", "count")}})
        if len(stats["mean"]) != len(self.mean):
            raise ValueError(f"normaliser statistics of {len(stats['mean'])} dims, expected {len(self.mean)}")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def stats(self) -> dict[str, list[float] | float | bool]:
        """Plain-python statistics (for meta.json and generated preprocessors)."""
        return {"enabled": self.enabled, "mean": self.mean.tolist(), "var": self.var.tolist(),
                "count": float(self.count), "clip": self.clip, "epsilon": self.epsilon}

    @torch.no_grad()
    def load_stats(self, stats: dict) -> None:
        """The inverse of `stats()` (e.g. the statistics saved beside an exported model); ValueError when they
        are not usable (check_stats) or of another width."""
        stats = check_stats(stats)
        mean = torch.as_tensor(stats["mean"], dtype=torch.float64)
        if mean.shape != self.mean.shape:
            raise ValueError(f"normaliser statistics of shape {tuple(mean.shape)}, expected {tuple(self.mean.shape)}")
        self.mean.copy_(mean)
        self.var.copy_(torch.as_tensor(stats["var"], dtype=torch.float64))
        self.count.fill_(stats["count"])
        self.set_extra_state(stats)
