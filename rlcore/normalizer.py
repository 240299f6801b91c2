"""Running mean/std of observations, on the training device (SB3 VecNormalize semantics, obs only).

Statistics are float64 accumulators merged with the parallel-variance formula (Chan et al. 1979):
for a batch with mean m_b, population variance v_b and count n_b,
    delta = m_b - mean,  n = count + n_b
    mean <- mean + delta * n_b / n
    var  <- (var * count + v_b * n_b + delta^2 * count * n_b / n) / n
    count <- n
starting from mean 0, var 1, count 1e-4 (SB3's RunningMeanStd). Normalising is the pure call
clip((x - mean) / sqrt(var + eps), -clip, clip), the training formula, used everywhere the policy acts
(the seed pipeline dropped the clip at evaluation: seed_workflow.md 13.12).
"""

from __future__ import annotations

import torch
from torch import nn

from rlcore.config import ObsNormConfig


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
        self.enabled = bool(state["enabled"])
        self.clip = float(state["clip"])
        self.epsilon = float(state["epsilon"])

    def stats(self) -> dict[str, list[float] | float | bool]:
        """Plain-python statistics (for meta.json and generated preprocessors)."""
        return {"enabled": self.enabled, "mean": self.mean.tolist(), "var": self.var.tolist(),
                "count": float(self.count), "clip": self.clip, "epsilon": self.epsilon}

    @torch.no_grad()
    def load_stats(self, stats: dict) -> None:
        """The inverse of `stats()` (e.g. the statistics saved beside an exported model)."""
        mean = torch.as_tensor(stats["mean"], dtype=torch.float64)
        if mean.shape != self.mean.shape:
            raise ValueError(f"normaliser statistics of shape {tuple(mean.shape)}, expected {tuple(self.mean.shape)}")
        self.mean.copy_(mean)
        self.var.copy_(torch.as_tensor(stats["var"], dtype=torch.float64))
        self.count.fill_(float(stats["count"]))
        self.set_extra_state(stats)
