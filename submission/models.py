"""SB3 zips (ours or saved by SB3) as policies to evaluate and as warm starts for training.

A zip holds networks only. The observation normaliser's statistics come from the meta document written
beside our zips (bundle.read_meta); a zip without one (e.g. one SB3 saved) runs on raw observations, with
a note saying so. Its action_space must be the real env's bounds (rlcore.export.check_compatible): that
is where the platform sends `predict`'s output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.tasks import TASK_NAMES
from rlcore.algos import Algorithm
from rlcore.config import AlgoConfig, ObsNormConfig
from rlcore.export import SB3Zip, check_compatible, load_zip_weights, policy_from_zip, read_sb3_zip
from rlcore.policy import DeployedPolicy
from submission.bundle import env_spaces, read_meta


def read_zip(path: str | Path) -> tuple[SB3Zip, dict[str, Any] | None]:
    """The zip and the meta document beside it (None when absent); ValueError on anything unusable."""
    model = read_sb3_zip(Path(path))
    meta = read_meta(Path(path))
    if meta is not None and meta.get("algo") != model.algo:
        raise ValueError(f"{path}: its meta document says {meta.get('algo')}, the zip holds {model.algo}")
    return model, meta


def _saved_normalizer(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """The normaliser statistics saved beside a zip, when it was trained with the normaliser on."""
    stats = None if meta is None else meta.get("normalizer")
    return stats if stats is not None and stats["enabled"] else None


@dataclass(frozen=True)
class ZipPolicy:
    """A zip ready for the evaluation harness."""

    policy: DeployedPolicy
    label: str
    meta: dict[str, Any] | None
    settings: dict[str, Any]
    """Harness keyword arguments (soccer: action_mode, action_repeat)."""
    note: str | None
    """To print before evaluating: no statistics beside the zip."""


def load_zip_policy(path: str | Path, device: str | torch.device = "cpu", env_id: str | None = None) -> ZipPolicy:
    """The deployed policy of a zip on the soccer tasks (env_id None) or on a gymnasium env.

    Soccer: the zip takes the 89-dim observation and returns raw torques; the policy returned acts in the
    wrapped env's [-1, 1] (the harness's units, which the torque action mode maps back onto the torques).
    """
    model, meta = read_zip(path)
    obs_dim, real_low, real_high = env_spaces(task=TASK_NAMES[0]) if env_id is None else env_spaces(env_id=env_id)
    check_compatible(model, obs_dim, real_low, real_high)
    if env_id is None:
        policy_low, policy_high = -np.ones_like(real_low), np.ones_like(real_high)
        settings = {"action_mode": "torque", "action_repeat": int((meta or {}).get("action_repeat", 1))}
    else:
        policy_low, policy_high, settings = real_low, real_high, {}
    policy = policy_from_zip(model, action_low=policy_low, action_high=policy_high,
                             normalizer=_saved_normalizer(meta), device=device)
    note = None if meta is not None else (
        f"note: no statistics beside {path} ({Path(path).with_suffix('.meta.json').name}): evaluating it "
        "without observation normalisation")
    return ZipPolicy(policy, f"{model.algo} zip @ {model.num_timesteps} steps", meta, settings, note)


@dataclass(frozen=True)
class WarmStart:
    """An SB3 zip to start training from: its networks, plus the normaliser statistics saved beside it.

    Not in a zip: optimiser state and replay buffer (and the normaliser when no statistics sit beside it).
    The run starts at timestep 0, without the uniform random warm-up (RunConfig.random_warmup=False).
    """

    path: Path
    model: SB3Zip
    meta: dict[str, Any] | None

    @classmethod
    def read(cls, path: str | Path, algo: str) -> WarmStart:
        """ValueError when unreadable or holding another algorithm than `algo`."""
        model, meta = read_zip(path)
        if model.algo != algo:
            raise ValueError(f"{path} holds a {model.algo.upper()} model, but --algo is {algo}")
        return cls(Path(path), model, meta)

    def config(self, base: AlgoConfig) -> AlgoConfig:
        """`base` with the zip's network layout and, when saved beside it, the normaliser's settings."""
        cfg = dataclasses.replace(base, net=self.model.net)
        stats = _saved_normalizer(self.meta)
        if stats is None:
            return cfg
        return dataclasses.replace(cfg, obs_norm=ObsNormConfig(enabled=True, clip=float(stats["clip"]),
                                                               epsilon=float(stats["epsilon"])))

    def check(self, cfg: AlgoConfig, obs_dim: int, real_low: np.ndarray, real_high: np.ndarray) -> None:
        """ValueError unless the final config and the env fit the zip."""
        if cfg.net != self.model.net:
            raise ValueError(f"the zip's network is {self.model.net}; drop --net-arch/--activation "
                             f"(they ask for {cfg.net})")
        if cfg.obs_norm.enabled and _saved_normalizer(self.meta) is None:
            raise ValueError("the zip has no normaliser statistics beside it (trained on raw observations, or "
                             "by SB3): --normalize-obs would feed its networks inputs they never saw")
        check_compatible(self.model, obs_dim, real_low, real_high)

    def apply(self, algo: Algorithm) -> str:
        """Load the zip into a freshly built `algo`; returns the statement to print (what is and is not restored)."""
        loaded = load_zip_weights(algo, self.model)
        stats = _saved_normalizer(self.meta)
        if stats is not None:
            algo.normalizer.load_stats(stats)
            normalizer = "the normaliser from the statistics saved beside the zip"
        elif self.meta is None:
            normalizer = "the normaliser fresh (no statistics beside the zip)"
        else:
            normalizer = "the normaliser off (trained without)"
        fresh = "optimisers start fresh" + ("" if algo.on_policy else ", the replay buffer empty")
        return (f"warm start from {self.path} ({self.model.algo.upper()}, trained {self.model.num_timesteps} "
                f"timesteps): loaded {', '.join(loaded)}. An SB3 zip holds no optimiser state, observation "
                f"normaliser or replay buffer: {fresh}, {normalizer}. Training starts at timestep 0, without "
                "the random warm-up.")
