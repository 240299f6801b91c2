"""Hyper-parameters: one frozen dataclass per algorithm, plus the shared nested ones.

Every default lives here and nowhere else. Each field's docstring (the string right under it) says what
it means, its unit or range and where the default comes from; `field_docs` reads those strings so the
CLIs build `--help` from them. Where we differ from Stable-Baselines3 the docstring says so, because
users compare. Bad values raise ValueError naming the field and the value.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "silu")
PRECISIONS = ("fp32", "bf16")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_positive(name: str, value: float) -> None:
    _check(value > 0, f"{name} must be > 0, got {value}")


def _check_unit_interval(name: str, value: float, *, open_low: bool = False) -> None:
    low_ok = value > 0 if open_low else value >= 0
    _check(low_ok and value <= 1, f"{name} must be in {'(0' if open_low else '[0'}, 1], got {value}")


@dataclass(frozen=True, kw_only=True, slots=True)
class NetConfig:
    """Hidden layers of the actor and the critic(s)."""

    net_arch: tuple[int, ...] = (256, 256)
    """Hidden layer sizes, shared by actor and critic (SB3 SAC default; SB3 TD3 uses (400, 300))."""
    activation: str = "relu"
    """Hidden activation: relu, tanh, elu, leaky_relu or silu (SB3: ReLU for TD3/SAC, Tanh for PPO)."""

    def __post_init__(self) -> None:
        _check(len(self.net_arch) > 0, f"net_arch needs at least one layer, got {self.net_arch}")
        _check(all(isinstance(h, int) and h > 0 for h in self.net_arch),
               f"net_arch sizes must be positive integers, got {self.net_arch}")
        _check(self.activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class BufferConfig:
    """Replay buffer of the off-policy algorithms."""

    buffer_size: int = 1_000_000
    """Transitions kept in the ring (SB3 default 1e6)."""
    batch_size: int = 256
    """Transitions per gradient step (SB3 default 256)."""
    learning_starts: int = 100
    """Timesteps of uniform random actions before learning starts (SB3 default 100)."""
    demo_fraction: float = 0.0
    """Share of the buffer (and of each batch) held by protected demonstrations, in [0, 1) (0 = none)."""

    def __post_init__(self) -> None:
        _check_positive("batch_size", self.batch_size)
        _check(self.buffer_size >= self.batch_size,
               f"buffer_size ({self.buffer_size}) must be >= batch_size ({self.batch_size})")
        _check(self.learning_starts >= 0, f"learning_starts must be >= 0, got {self.learning_starts}")
        _check(0 <= self.demo_fraction < 1, f"demo_fraction must be in [0, 1) (the ring needs room), "
               f"got {self.demo_fraction}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ObsNormConfig:
    """Running mean/std normalisation of observations (SB3 VecNormalize semantics, obs only)."""

    enabled: bool = False
    """Normalise observations with running statistics (off by default, as SB3)."""
    clip: float = 10.0
    """Normalised observations are clipped to [-clip, clip] (SB3 VecNormalize clip_obs)."""
    epsilon: float = 1e-8
    """Added to the variance before the square root (SB3 VecNormalize epsilon)."""

    def __post_init__(self) -> None:
        _check_positive("obs clip", self.clip)
        _check_positive("obs epsilon", self.epsilon)


@dataclass(frozen=True, kw_only=True, slots=True)
class TD3Config:
    """TD3 (Fujimoto et al. 2018). Defaults follow SB3's TD3 unless a docstring says otherwise."""

    net: NetConfig = field(default_factory=NetConfig)
    """Actor and twin-critic layers."""
    buffer: BufferConfig = field(default_factory=BufferConfig)
    """Replay buffer and batch."""
    obs_norm: ObsNormConfig = field(default_factory=ObsNormConfig)
    """Observation normaliser."""
    learning_rate: float = 1e-3
    """Adam learning rate of actor and critic (SB3 default 1e-3)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Soft target update rate: target <- (1 - tau) target + tau online."""
    train_freq: int = 1
    """Vector steps between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    policy_delay: int = 2
    """Critic updates per actor and target update (TD3 paper)."""
    target_policy_noise: float = 0.2
    """Std of the Gaussian smoothing noise on the target action, in [-1, 1] action units."""
    target_noise_clip: float = 0.5
    """The smoothing noise is clipped to [-c, c]."""
    exploration_noise: float = 0.1
    """Std of Gaussian noise added to acting actions ([-1, 1] units). SB3 default: none; RL Zoo uses 0.1."""
    actor_learning_starts: int = 0
    """Gradient steps that train only the critic before the actor (and its target) move; lets a fresh critic
    learn before it steers a warm-started (BC) actor. 0 = SB3 behaviour."""
    bc_coef: float = 0.0
    """Weight of a behaviour-cloning term on the batch's demonstration rows in the actor loss, with the Q term
    scaled by 1 / max(mean|Q|, 1) (TD3+BC, Fujimoto & Gu 2021: their alpha 2.5 is bc_coef 0.4). 0 = off (SB3)."""
    anchor_coef: float = 0.0
    """Weight of an MSE term pulling the actor's action on EVERY batch state towards a frozen copy of the
    warm-start actor (set_anchor), with the Q term scaled as for bc_coef: keeps a BC start from drifting off
    where no demonstration constrains it. 0 = off (SB3)."""
    precision: str = "fp32"
    """Arithmetic of the networks' hidden layers in the updates: fp32 (SB3), or bf16 mixed precision (bf16
    products, fp32 weights, gradients, optimiser state, targets, heads and losses; rlcore/networks.py). Needs a
    CPU with AVX512-BF16 / AMX or a bf16 GPU. Acting, evaluation, checkpoints and exports are fp32 either way."""
    cuda_graphs: bool = False
    """Capture the whole update (critic, actor, alpha, targets) in CUDA graphs and replay them (CUDA only):
    removes the per-kernel launch cost that dominates small-network updates on a GPU. Off by default."""

    def __post_init__(self) -> None:
        _validate_common(self.learning_rate, self.gamma, self.tau)
        _check_positive("train_freq", self.train_freq)
        _check_positive("gradient_steps", self.gradient_steps)
        _check_positive("policy_delay", self.policy_delay)
        _check(self.target_policy_noise >= 0, f"target_policy_noise must be >= 0, got {self.target_policy_noise}")
        _check(self.target_noise_clip >= 0, f"target_noise_clip must be >= 0, got {self.target_noise_clip}")
        _check(self.exploration_noise >= 0, f"exploration_noise must be >= 0, got {self.exploration_noise}")
        _check(self.actor_learning_starts >= 0, f"actor_learning_starts must be >= 0, got {self.actor_learning_starts}")
        _check(self.bc_coef >= 0, f"bc_coef must be >= 0, got {self.bc_coef}")
        _check(self.anchor_coef >= 0, f"anchor_coef must be >= 0, got {self.anchor_coef}")
        _validate_speed(self.precision, self.cuda_graphs)


@dataclass(frozen=True, kw_only=True, slots=True)
class SACConfig:
    """SAC with automatic entropy tuning (Haarnoja et al. 2018b). Defaults follow SB3's SAC."""

    net: NetConfig = field(default_factory=NetConfig)
    """Actor and twin-critic layers."""
    buffer: BufferConfig = field(default_factory=BufferConfig)
    """Replay buffer and batch."""
    obs_norm: ObsNormConfig = field(default_factory=ObsNormConfig)
    """Observation normaliser."""
    learning_rate: float = 3e-4
    """Adam learning rate of actor, critic and entropy coefficient (SB3 default 3e-4)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Soft target update rate."""
    train_freq: int = 1
    """Vector steps between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    target_update_interval: int = 1
    """Gradient steps between target updates."""
    ent_coef: float | None = None
    """Fixed entropy coefficient alpha; None tunes it automatically (SB3 'auto')."""
    ent_coef_init: float = 1.0
    """Initial alpha when tuned automatically (SB3 'auto' starts at 1.0)."""
    ent_coef_min: float | None = None
    """Floor for the tuned alpha (the seed's EntropyFloorCallback); None = no floor."""
    target_entropy: float | None = None
    """Entropy target when tuning alpha; None = -dim(action space)."""
    log_std_min: float = -20.0
    """Lower clamp of the actor's log std (SB3)."""
    log_std_max: float = 2.0
    """Upper clamp of the actor's log std (SB3)."""
    actor_learning_starts: int = 0
    """Gradient steps that train only the critic before the actor and alpha move (see TD3Config). 0 = SB3."""
    bc_coef: float = 0.0
    """Behaviour-cloning weight on demonstration rows in the actor loss (see TD3Config). 0 = off (SB3)."""
    anchor_coef: float = 0.0
    """Weight of the warm-start anchor on the deterministic action tanh(mean) (see TD3Config). 0 = off (SB3)."""
    precision: str = "fp32"
    """Arithmetic of the networks' hidden layers in the updates (see TD3Config): fp32 (SB3) or bf16."""
    cuda_graphs: bool = False
    """Capture the whole update in CUDA graphs (see TD3Config; CUDA only). Off by default."""

    def __post_init__(self) -> None:
        _validate_common(self.learning_rate, self.gamma, self.tau)
        _check_positive("train_freq", self.train_freq)
        _check_positive("gradient_steps", self.gradient_steps)
        _check_positive("target_update_interval", self.target_update_interval)
        _check(self.ent_coef is None or self.ent_coef >= 0, f"ent_coef must be >= 0, got {self.ent_coef}")
        _check_positive("ent_coef_init", self.ent_coef_init)
        _check(self.ent_coef_min is None or self.ent_coef_min > 0,
               f"ent_coef_min must be > 0, got {self.ent_coef_min}")
        _check(self.ent_coef_min is None or self.ent_coef is None,
               "ent_coef_min applies only to an automatically tuned ent_coef")
        _check(self.log_std_min < self.log_std_max,
               f"log_std_min ({self.log_std_min}) must be < log_std_max ({self.log_std_max})")
        _check(self.actor_learning_starts >= 0, f"actor_learning_starts must be >= 0, got {self.actor_learning_starts}")
        _check(self.bc_coef >= 0, f"bc_coef must be >= 0, got {self.bc_coef}")
        _check(self.anchor_coef >= 0, f"anchor_coef must be >= 0, got {self.anchor_coef}")
        _validate_speed(self.precision, self.cuda_graphs)

    @property
    def auto_entropy(self) -> bool:
        """True when alpha is learned."""
        return self.ent_coef is None


@dataclass(frozen=True, kw_only=True, slots=True)
class PPOConfig:
    """PPO with the clipped objective (Schulman et al. 2017). Defaults follow SB3's PPO."""

    net: NetConfig = field(default_factory=lambda: NetConfig(net_arch=(64, 64), activation="tanh"))
    """Separate policy and value networks (SB3 default pi=vf=[64, 64], Tanh)."""
    obs_norm: ObsNormConfig = field(default_factory=ObsNormConfig)
    """Observation normaliser."""
    learning_rate: float = 3e-4
    """Adam learning rate (SB3 default 3e-4)."""
    n_steps: int = 2048
    """Vector steps collected per environment per rollout (SB3 default 2048)."""
    batch_size: int = 64
    """Minibatch size in transitions (SB3 default 64)."""
    n_epochs: int = 10
    """Passes over each rollout."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (Schulman et al. 2016)."""
    clip_range: float = 0.2
    """Probability-ratio clip epsilon."""
    clip_range_vf: float | None = None
    """Value clipping range; None = no value clipping (SB3 default)."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    ent_coef: float = 0.01
    """Entropy bonus weight (differs from SB3's 0.0: the seed pipeline used 0.01)."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Global gradient norm clip."""
    target_kl: float | None = None
    """Stop the epochs early when approx KL exceeds 1.5 x this; None = never (SB3)."""
    log_std_init: float = 0.0
    """Initial log std of the state-independent Gaussian (SB3)."""
    actor_learning_starts: int = 0
    """Rollouts whose update trains only the value function before the policy moves: a fresh value function's
    advantages are noise that a warm-started (BC) policy would follow. 0 = SB3 behaviour."""
    anchor_coef: float = 0.0
    """Weight of an MSE term pulling the policy mean on every minibatch state towards a frozen copy of the
    warm-start policy's (set_anchor; see TD3Config). 0 = off (SB3)."""

    def __post_init__(self) -> None:
        _validate_common(self.learning_rate, self.gamma)
        _check(self.actor_learning_starts >= 0, f"actor_learning_starts must be >= 0, got {self.actor_learning_starts}")
        _check(self.anchor_coef >= 0, f"anchor_coef must be >= 0, got {self.anchor_coef}")
        _check_positive("n_steps", self.n_steps)
        _check(self.batch_size > 1, f"batch_size must be > 1, got {self.batch_size}")
        _check_positive("n_epochs", self.n_epochs)
        _check_unit_interval("gae_lambda", self.gae_lambda)
        _check_positive("clip_range", self.clip_range)
        _check(self.clip_range_vf is None or self.clip_range_vf > 0,
               f"clip_range_vf must be > 0, got {self.clip_range_vf}")
        _check(self.ent_coef >= 0, f"ent_coef must be >= 0, got {self.ent_coef}")
        _check(self.vf_coef >= 0, f"vf_coef must be >= 0, got {self.vf_coef}")
        _check_positive("max_grad_norm", self.max_grad_norm)
        _check(self.target_kl is None or self.target_kl > 0, f"target_kl must be > 0, got {self.target_kl}")


def _validate_speed(precision: str, cuda_graphs: bool) -> None:
    _check(precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {precision!r}")
    _check(isinstance(cuda_graphs, bool), f"cuda_graphs must be true or false, got {cuda_graphs!r}")


def _validate_common(learning_rate: float, gamma: float, tau: float | None = None) -> None:
    _check(math.isfinite(learning_rate) and learning_rate > 0, f"learning_rate must be > 0, got {learning_rate}")
    _check_unit_interval("gamma", gamma)
    if tau is not None:
        _check_unit_interval("tau", tau, open_low=True)


AlgoConfig = TD3Config | SACConfig | PPOConfig


def __getattr__(name: str) -> Any:
    """`CONFIGS`, {algorithm name: config class}, derived from rlcore/registry.py for the callers that still
    import it from here (train.py). Built on access: the registry imports this module."""
    if name == "CONFIGS":
        from rlcore.registry import ALGORITHM_SPECS

        return {spec.name: spec.config for spec in ALGORITHM_SPECS.values()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (for checkpoints, JSON and YAML)."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type, data: dict[str, Any]) -> AlgoConfig:
    """Rebuild a config of class `cls` (an AlgorithmSpec's `config`) from `config_to_dict` output; unknown keys
    raise ValueError."""
    return _build(cls, data)


SPEED_FIELDS = ("precision", "cuda_graphs")
"""Options of how fast a machine runs the updates, not of what is learned or stored (all state is fp32)."""


def portable_config(cfg: AlgoConfig) -> AlgoConfig:
    """`cfg` with the speed options at their defaults: a checkpoint trained in bf16 or with CUDA graphs loads,
    evaluates, exports and resumes on any device; a resumed run takes them from its own flags."""
    defaults = {name: f.default for f in dataclasses.fields(cfg) if (name := f.name) in SPEED_FIELDS}
    return dataclasses.replace(cfg, **defaults) if defaults else cfg


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    kwargs = {}
    for key, value in data.items():
        sub = _nested_type(names[key])
        if sub is not None and isinstance(value, dict):
            value = _build(sub, value)
        elif key == "net_arch":
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _nested_type(f: dataclasses.Field) -> type | None:
    nested = {"net": NetConfig, "buffer": BufferConfig, "obs_norm": ObsNormConfig}
    return nested.get(f.name)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a config dataclass, by field name (used for --help)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs
