"""Freeze masks: keep chosen actor layers fixed (e.g. the first layers after behaviour cloning).

A frozen parameter has requires_grad=False, so backward gives it no gradient: every algorithm clears
gradients before backward, so Adam sees None (per-layer Adam skips it) or a zero slice (PPO's flat
Adam leaves zero moments at zero); either way the weights and moments stay bitwise unchanged. Critics are never frozen:
only the layers an algorithm calls its actor trunk can be selected. Unfreezing happens once, at the
first training step strictly after `until_step` timesteps, with a logged message.
"""

from __future__ import annotations

from torch import nn


class FreezeSchedule:
    """Freezes the first `n_layers` Linear layers of an actor trunk until `until_step` timesteps."""

    def __init__(self, trunk: list[nn.Linear], n_layers: int, until_step: int) -> None:
        if n_layers < 0:
            raise ValueError(f"the number of frozen layers must be >= 0, got {n_layers}")
        if n_layers >= len(trunk):
            raise ValueError(f"cannot freeze {n_layers} layers: the actor has {len(trunk)} Linear layers and at "
                             f"least one must stay trainable")
        if until_step < 0:
            raise ValueError(f"freeze until step must be >= 0, got {until_step}")
        self.layers = trunk[:n_layers]
        self.until_step = until_step
        self.frozen = False
        if self.layers:
            self._set_trainable(False)
            self.frozen = True

    def parameter_count(self) -> int:
        """Number of scalars held fixed while frozen."""
        return sum(p.numel() for layer in self.layers for p in layer.parameters())

    def describe(self) -> str:
        return (f"froze {len(self.layers)} actor layer(s) ({self.parameter_count()} parameters) "
                f"until timestep {self.until_step}")

    def maybe_unfreeze(self, timestep: int) -> str | None:
        """Unfreeze when timestep > until_step; returns the message to log when it happens."""
        if not self.frozen or timestep <= self.until_step:
            return None
        self._set_trainable(True)
        self.frozen = False
        return f"unfroze {len(self.layers)} actor layer(s) at timestep {timestep}"

    def _set_trainable(self, trainable: bool) -> None:
        for layer in self.layers:
            for p in layer.parameters():
                p.requires_grad_(trainable)

    def state_dict(self) -> dict:
        return {"n_layers": len(self.layers), "until_step": self.until_step, "frozen": self.frozen}

    def load_state_dict(self, state: dict) -> None:
        """Restore the frozen flag (the layer selection is rebuilt from the same config)."""
        self.until_step = state["until_step"]
        self.frozen = state["frozen"]
        self._set_trainable(not self.frozen)
