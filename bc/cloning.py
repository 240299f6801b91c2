"""Behaviour cloning onto the RL algorithm's own actor, so the weights load 1:1 into TD3, SAC or PPO.

The network is built with rlcore.networks, with the RL run's net_arch and activation:
* td3: TD3Actor, trained through its output tanh(mu(obs));
* sac: SACActor, trained through its deterministic action tanh(mu(latent_pi(obs))); the log-std head is
  neither trained nor saved;
* ppo: ActorCritic. Trained: the raw Gaussian mean action_net(policy_net(obs)); deployed: that mean clipped to
  [-1, 1] (SB3). The labels lie in [-1, 1], so clipping only moves the output towards them and the training loss
  bounds the deployed one, whereas training the clipped mean would stop the gradient wherever the mean leaves
  [-1, 1]. PPO's value network and log std are neither trained nor saved.
Loss: MSE against the labels. Validation loss: MSE of the deployed action on a held-out random share of the rows
(consecutive rows are alike, so it measures the fit, not generalisation to new episodes).

Inputs go through a RunningNormalizer (rlcore's formula, clip and epsilon) fitted once on the training rows,
or an identity one without normalisation; it is saved with the weights and becomes the RL run's normaliser.

Payload (a torch.save dict, written atomically): format "bc_actor", version, algo, state_dict (only the entries
warm start loads, keys relative to algo.actor), obs_dim, action_dim, net_arch,
activation, action_mode, normalizer (state_dict), normalize_obs, epochs, train_loss, val_loss, dataset, and what
the recording ran with, when the dataset says (None otherwise): action_repeat, and in command mode `command` (the
CommandOptions as dataclasses.asdict: the controller the actions command, and their limits).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from envs.command import CommandOptions
from rlcore.checkpoint import on_meta_device, read_weights_only
from rlcore.config import ACTIVATIONS, NetConfig, ObsNormConfig
from rlcore.fileio import atomic_write
from rlcore.normalizer import RunningNormalizer
from rlcore.policy import DeployedPolicy
from rlcore.registry import ALGORITHM_SPECS, DEFAULT_ALGORITHM, algorithm_spec

BC_FORMAT = "bc_actor"
BC_VERSION = 1


def default_activation(algo: str) -> str:
    """The algorithm config's default hidden activation (relu for TD3/SAC, tanh for PPO, as SB3)."""
    return algorithm_spec(algo).config().net.activation


def build_actor(algo: str, obs_dim: int, act_dim: int, net: NetConfig) -> nn.Module:
    """The algorithm's actor module (the registry's `actor_network`: for PPO the whole ActorCritic)."""
    return algorithm_spec(algo).actor_network(obs_dim, act_dim, net)


def bc_prefixes(algo: str) -> tuple[str, ...]:
    """State-dict key prefixes of the actor's BC-trained sub-modules (the registry's `bc_modules`)."""
    return tuple(f"{path}." for path in algorithm_spec(algo).bc_modules)


def trained_parameters(algo: str, actor: nn.Module) -> list[nn.Parameter]:
    """Parameters of the BC-trained sub-modules."""
    return [p for path in algorithm_spec(algo).bc_modules for p in actor.get_submodule(path).parameters()]


def bc_state_dict(algo: str, actor: nn.Module) -> dict[str, torch.Tensor]:
    """The entries of actor.state_dict() that belong to the BC-trained sub-modules (CPU copies)."""
    prefixes = bc_prefixes(algo)
    return {k: v.detach().cpu().clone() for k, v in actor.state_dict().items() if k.startswith(prefixes)}


@dataclass(frozen=True, kw_only=True)
class BCConfig:
    """Behaviour-cloning hyper-parameters (defaults: the seed's bc_train.py, docs/seed_pipeline.md)."""

    algo: str = DEFAULT_ALGORITHM
    """Whose actor to clone into: a name in rlcore/registry.py (td3, sac, ppo)."""
    net_arch: tuple[int, ...] = (256, 256, 128)
    """Hidden sizes; must equal the RL run's --net-arch (docs/seed_pipeline.md, fix 15)."""
    activation: str | None = None
    """Hidden activation; None = the algorithm's default (relu TD3/SAC, tanh PPO)."""
    epochs: int = 30
    batch_size: int = 1024
    lr: float = 3e-4
    """Adam learning rate."""
    val_fraction: float = 0.1
    """Share of rows held out for the validation loss, in [0, 1)."""
    normalize_obs: bool = False
    """Fit a running normaliser on the training rows (pass --normalize-obs to train.py as well)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHM_SPECS:
            raise ValueError(f"algo must be one of {', '.join(ALGORITHM_SPECS)}, got {self.algo!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        _ = self.net  # NetConfig checks net_arch and activation

    @property
    def net(self) -> NetConfig:
        return NetConfig(net_arch=tuple(self.net_arch), activation=self.activation or default_activation(self.algo))


@dataclass
class BCResult:
    """A trained actor, its normaliser and the per-epoch losses."""

    actor: nn.Module
    normalizer: RunningNormalizer
    obs_dim: int
    action_dim: int
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices: a seeded random share held out, at least one row when the share > 0."""
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n - n_val < 1:
        raise ValueError(f"{n} samples are too few to hold out a validation share of {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_bc(obs: np.ndarray, actions: np.ndarray, cfg: BCConfig, device: torch.device | str = "cpu",
             log: Callable[[str], None] | None = print) -> BCResult:
    """Fit the algorithm's actor to (obs (N, D), actions (N, A) in [-1, 1]); one log line per epoch."""
    device = torch.device(device)
    train_idx, val_idx = split_rows(len(obs), cfg.val_fraction, cfg.seed)
    torch.manual_seed(cfg.seed)
    actor = build_actor(cfg.algo, obs.shape[1], actions.shape[1], cfg.net).to(device)
    bc_output = algorithm_spec(cfg.algo).bc_output  # the deployed action, or PPO's unclipped mean (docstring)
    normalizer = RunningNormalizer((obs.shape[1],), ObsNormConfig(enabled=cfg.normalize_obs), device)
    obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
    act_t = torch.as_tensor(actions, dtype=torch.float32, device=device)
    x_train, y_train = obs_t[train_idx], act_t[train_idx]
    normalizer.update(x_train)
    x_train = normalizer(x_train)  # the statistics are fixed from here on: normalise once
    x_val, y_val = normalizer(obs_t[val_idx]), act_t[val_idx]
    optimizer = torch.optim.Adam(trained_parameters(cfg.algo, actor), lr=cfg.lr)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    result = BCResult(actor, normalizer, obs.shape[1], actions.shape[1])
    for epoch in range(1, cfg.epochs + 1):
        total = torch.zeros((), device=device)
        for idx in torch.randperm(len(x_train), device=device, generator=generator).split(cfg.batch_size):
            loss = F.mse_loss(bc_output(actor, x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        result.train_losses.append(float(total) / len(x_train))  # one host sync per epoch
        line = f"Epoch {epoch:03d} | loss={result.train_losses[-1]:.6f}"
        if len(x_val):
            with torch.no_grad():
                result.val_losses.append(float(F.mse_loss(actor.deterministic(x_val), y_val)))
            line += f" | val_loss={result.val_losses[-1]:.6f}"
        if log is not None:
            log(line)
    return result


def make_payload(result: BCResult, cfg: BCConfig, *, action_mode: str | None, dataset: str = "",
                 action_repeat: int | None = None, command: dict | None = None) -> dict:
    """The saved BC file's contents (module docstring)."""
    return {
        "format": BC_FORMAT, "version": BC_VERSION, "algo": cfg.algo,
        "state_dict": bc_state_dict(cfg.algo, result.actor),
        "obs_dim": result.obs_dim, "action_dim": result.action_dim,
        "net_arch": list(cfg.net.net_arch), "activation": cfg.net.activation, "action_mode": action_mode,
        "normalizer": {k: v.cpu() if torch.is_tensor(v) else v for k, v in result.normalizer.state_dict().items()},
        "normalize_obs": cfg.normalize_obs, "epochs": cfg.epochs,
        "train_loss": result.train_losses[-1] if result.train_losses else None,
        "val_loss": result.val_losses[-1] if result.val_losses else None,
        "dataset": dataset, "action_repeat": action_repeat, "command": command,
    }


def save_bc(path: str | Path, payload: dict) -> None:
    """Write a BC payload atomically."""
    atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def load_bc(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read and check a BC payload; ValueError naming the file when it is missing, not one, or malformed."""
    return check_bc(read_weights_only(Path(path), map_location, "BC weights"), path)


def is_bc(payload: object) -> bool:
    """Whether a loaded .pt payload says it is a BC payload (check_bc then says whether it is a good one)."""
    return isinstance(payload, dict) and payload.get("format") == BC_FORMAT


def check_bc(payload: object, path: str | Path) -> dict:
    """`payload` (read from `path`) checked as a BC payload; ValueError naming the file and the problem."""
    if not is_bc(payload):
        raise ValueError(f"{path} is not a BC payload written by python -m bc.train")
    if payload.get("version") != BC_VERSION:
        raise ValueError(f"{path}: BC payload version {payload.get('version')}, this code reads {BC_VERSION}")
    try:
        _check_payload(payload)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{path}: malformed BC payload: {str(exc).strip().splitlines()[0]}") from None
    return payload


def _check_payload(payload: dict) -> None:
    """Keys and types, then the weights and the normaliser loaded into the payload's own network on the meta device
    (nothing allocated): a payload that passes builds and loads."""
    if payload.get("algo") not in ALGORITHM_SPECS:
        raise ValueError(f"unknown algorithm {payload.get('algo')!r} (known: {', '.join(ALGORITHM_SPECS)})")
    for key in ("obs_dim", "action_dim"):
        if type(payload.get(key)) is not int or payload[key] <= 0:
            raise ValueError(f"{key} must be an integer > 0, got {payload.get(key)!r}")
    if not isinstance(payload.get("net_arch"), list) or payload.get("activation") not in ACTIVATIONS:
        raise ValueError("net_arch must be a list of sizes and activation one of " + ", ".join(ACTIVATIONS))
    net = net_config(payload)
    state = payload.get("state_dict")
    if not (isinstance(state, dict) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items())):
        raise ValueError("state_dict must map names to tensors")
    if not (payload.get("action_mode") is None or isinstance(payload["action_mode"], str)):
        raise ValueError("action_mode must be a string or null")
    repeat = payload.get("action_repeat")
    if not (repeat is None or (type(repeat) is int and repeat >= 1)):
        raise ValueError(f"action_repeat must be an integer >= 1 or null, got {repeat!r}"[:200])
    if payload.get("command") is not None:
        CommandOptions.from_dict(payload["command"])
    with on_meta_device():
        actor = build_actor(payload["algo"], payload["obs_dim"], payload["action_dim"], net)
        _, unexpected = actor.load_state_dict(state, strict=False)
        own = {k for k in actor.state_dict() if k.startswith(bc_prefixes(payload["algo"]))}
        if unexpected or own - set(state):
            raise ValueError(f"the weights do not match the payload's network: missing {sorted(own - set(state))}, "
                             f"unexpected {sorted(unexpected)}")
        RunningNormalizer((payload["obs_dim"],), ObsNormConfig(), "meta").load_state_dict(payload.get("normalizer"))


def net_config(payload: dict) -> NetConfig:
    """The NetConfig a payload was trained with."""
    return NetConfig(net_arch=tuple(payload["net_arch"]), activation=payload["activation"])


def bc_policy(payload: dict, device: torch.device | str = "cpu") -> DeployedPolicy:
    """The deployed BC policy (normaliser -> actor -> [-1, 1]): evaluate or record it like any other policy."""
    actor = build_actor(payload["algo"], payload["obs_dim"], payload["action_dim"], net_config(payload))
    missing, unexpected = actor.load_state_dict(payload["state_dict"], strict=False)
    if unexpected or any(k.startswith(bc_prefixes(payload["algo"])) for k in missing):
        raise ValueError(f"BC state dict does not match its own architecture (unexpected {unexpected})")
    normalizer = RunningNormalizer((payload["obs_dim"],), ObsNormConfig(), device)
    normalizer.load_state_dict(payload["normalizer"])
    ones = np.ones(payload["action_dim"], np.float32)
    return DeployedPolicy(normalizer, actor.to(device), -ones, ones)
