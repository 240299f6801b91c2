"""Actors and critics whose parameter names map one-to-one onto Stable-Baselines3's MlpPolicy keys.

Every network is an `nn.Sequential` of [Linear, activation] pairs, so the Linear layers sit at even
indices exactly as in SB3 (docs/sb3_zip.md section 2):

| ours                              | SB3 policy.pth key prefix                        |
|-----------------------------------|--------------------------------------------------|
| TD3Actor.mu                       | actor.mu.* (and actor_target.mu.*)               |
| SACActor.latent_pi / mu / log_std | actor.latent_pi.* / actor.mu.* / actor.log_std.* |
| TwinCritic.qf0 / qf1              | critic.qf0.* / critic.qf1.* (and critic_target)  |
| ActorCritic (whole module)        | log_std, mlp_extractor.{policy,value}_net.*, action_net.*, value_net.* |

All actors work in the normalised action space [-1, 1]; mapping onto env units is the deployed
policy's job (rlcore.policy).

Mixed precision (TD3/SAC `precision: bf16`): the training passes (`forward(..., dtype)` of the actors and the
critic) run the HIDDEN layers in the compute dtype: each product's input, weight and bias are cast to bf16, the
product accumulates in fp32 inside the kernel and rounds its output to bf16 (what torch.autocast does to a
Linear). The parameters stay fp32 leaves and get fp32 gradients through the casts, so the optimiser, the targets
and the Polyak averages never see bf16. The output heads (Q, the action mean and log std) run in fp32 on the
fp32 copy of the last hidden activation: a bf16 Q of |Q| ~ 1000 would be rounded to a multiple of 4 or 8, which
the TD error would then fit; the heads are ~1% of the FLOPs. On a CPU with MKL's bf16 product, ReLU layers on
batches of at most rlcore.cpu_bf16.MAX_ROWS rows keep the products' fp32 accumulators instead (bias, ReLU and
the stack's output in fp32, only each product's inputs rounded to bf16): the same products without oneDNN's
per-call cost (rlcore.cpu_bf16). `deterministic` (the deployed, exported and
TorchScript path) is always fp32. With dtype fp32 a training pass runs exactly the ops of the module's
Sequential (F.linear and the activation per layer), so fp32 results are bitwise those of `self.mu(obs)` etc.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rlcore import cpu_bf16
from rlcore.config import NetConfig

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU,
}
_FUNCTIONAL = {"relu": F.relu, "tanh": torch.tanh, "elu": F.elu, "leaky_relu": F.leaky_relu, "silu": F.silu}
"""The same activations as functions (module defaults: ELU alpha 1, LeakyReLU slope 0.01)."""


def activation_class(name: str) -> type[nn.Module]:
    """The torch.nn activation class for a config name (also what the SB3 exporter pickles)."""
    return _ACTIVATIONS[name]


def mlp(in_dim: int, hidden: tuple[int, ...], activation: str, out_dim: int | None = None,
        out_activation: type[nn.Module] | None = None) -> nn.Sequential:
    """[Linear, act] per hidden size, then an optional output Linear (+ activation), SB3's create_mlp."""
    act = activation_class(activation)
    layers: list[nn.Module] = []
    last = in_dim
    for size in hidden:
        layers += [nn.Linear(last, size), act()]
        last = size
    if out_dim is not None:
        layers.append(nn.Linear(last, out_dim))
        if out_activation is not None:
            layers.append(out_activation())
    return nn.Sequential(*layers)


def zero_layer(layer: nn.Linear) -> None:
    """Zero a layer's weights and bias in place: an action head that outputs 0 on every input (a residual policy
    that starts as its base policy)."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()


def linear_layers(*modules: nn.Module) -> list[nn.Linear]:
    """The Linear layers of the given modules, in forward order (used by freeze masks)."""
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def hidden_pass(layers: tuple[nn.Linear, ...], activation, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """activation(Linear(x)) for each layer, with the products in `dtype`; the result is fp32.

    fp32: the module's own ops. bf16 ReLU layers on a CPU batch of at most rlcore.cpu_bf16.MAX_ROWS rows: MKL's
    bf16 products with fp32 outputs (rlcore.cpu_bf16). Other bf16 passes: input, weight and bias cast per product
    (module docstring), the last activation cast back to fp32 for the heads.
    """
    if dtype == torch.float32:
        for layer in layers:
            x = activation(F.linear(x, layer.weight, layer.bias))
        return x
    if dtype == torch.bfloat16 and activation is F.relu and cpu_bf16.usable(x):
        return cpu_bf16.relu_stack(x, layers)
    x = x.to(dtype)
    for layer in layers:
        x = activation(F.linear(x, layer.weight.to(dtype), layer.bias.to(dtype)))
    return x.float()


class TD3Actor(nn.Module):
    """Deterministic actor: tanh(mu(obs)) in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, net: NetConfig) -> None:
        super().__init__()
        self.mu = mlp(obs_dim, net.net_arch, net.activation, act_dim, nn.Tanh)
        self._hidden = tuple(linear_layers(self.mu)[:-1])  # a tuple: not registered, no second state_dict key
        self._activation = _FUNCTIONAL[net.activation]

    @torch.jit.unused  # the training pass; TorchScript exports script `deterministic` only
    def forward(self, obs: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The training pass: hidden layers in `dtype`, the head in fp32 (module docstring)."""
        head = self.mu[-2]
        return torch.tanh(F.linear(hidden_pass(self._hidden, self._activation, obs, dtype), head.weight, head.bias))

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The deployed action."""
        return self.mu(obs)

    def trunk(self) -> list[nn.Linear]:
        """Linear layers from input to output (freeze order)."""
        return linear_layers(self.mu)

    def action_head(self) -> nn.Linear:
        """The layer whose output the tanh squashes into the action."""
        return self.mu[-2]


class SACActor(nn.Module):
    """Squashed Gaussian actor: a = tanh(u), u ~ N(mu, exp(log_std)), log_std a Linear head (SB3)."""

    def __init__(self, obs_dim: int, act_dim: int, net: NetConfig, log_std_min: float = -20.0,
                 log_std_max: float = 2.0) -> None:
        super().__init__()
        self.latent_pi = mlp(obs_dim, net.net_arch, net.activation)
        self.mu = nn.Linear(net.net_arch[-1], act_dim)
        self.log_std = nn.Linear(net.net_arch[-1], act_dim)
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max
        self._hidden = tuple(linear_layers(self.latent_pi))
        self._activation = _FUNCTIONAL[net.activation]

    @torch.jit.unused  # the training pass; TorchScript exports script `deterministic` only
    def forward(self, obs: torch.Tensor, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-squash mean and clamped log std (fp32), the hidden layers in `dtype` (module docstring)."""
        latent = hidden_pass(self._hidden, self._activation, obs, dtype)
        log_std = F.linear(latent, self.log_std.weight, self.log_std.bias).clamp(self.log_std_min, self.log_std_max)
        return F.linear(latent, self.mu.weight, self.mu.bias), log_std

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The deployed action tanh(mean)."""
        return torch.tanh(self.mu(self.latent_pi(obs)))

    def action_head(self) -> nn.Linear:
        """The mean head (the deployed action is its tanh)."""
        return self.mu

    @torch.jit.unused
    def sample(self, obs: torch.Tensor, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised squashed sample and its log-probability, shape (B, A) and (B,)."""
        return squashed_sample(*self(obs, dtype))

    def trunk(self) -> list[nn.Linear]:
        """latent_pi layers, then the mean head and the log-std head."""
        return linear_layers(self.latent_pi, self.mu, self.log_std)

    def set_std(self, std: float) -> None:
        """Make the pre-tanh std `std` on every state and action dim (log-std head: zero weights, bias log std)."""
        with torch.no_grad():
            self.log_std.weight.zero_()
            self.log_std.bias.fill_(math.log(std))


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def squashed_sample(mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a = tanh(mean + std * noise) and log pi(a), from the actor's outputs (callers that also need the mean,
    e.g. SAC's anchor on tanh(mean), run the network once).

    With a gradient to record, one autograd node with a hand-written backward (_SquashedSample) replaces the ~20
    recorded ops and their ~25 backward ops: ~0.2 ms of a ~6 ms SAC update at batch 256 on this project's CPU
    (docs/results.md "Critic step without autograd"). The forward's values are the same ops either way.
    """
    noise = torch.randn_like(mean)
    if torch.is_grad_enabled() and (mean.requires_grad or log_std.requires_grad):
        return _SquashedSample.apply(mean, log_std, noise)
    action, log_prob, _, _ = _squash(mean, log_std, noise)
    return action, log_prob


def _squash(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """a = tanh(u), u = mean + std * noise, its log-probability, and std and z = (u - mean) / std (the backward's)."""
    std = log_std.exp()
    u = mean + std * noise
    z = (u - mean) / std
    return torch.tanh(u), _log_prob(u, z, log_std), std, z


def squashed_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(tanh(u)) = log N(u; mean, std) - sum log(1 - tanh(u)^2), summed over action dims.

    The Jacobian term uses the stable identity log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))
    (SAC paper appendix C; avoids SB3's epsilon of 1e-6).
    """
    return _log_prob(u, (u - mean) / log_std.exp(), log_std)


def _log_prob(u: torch.Tensor, z: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """squashed_log_prob from z = (u - mean) / std."""
    gaussian = -0.5 * z ** 2 - log_std - _LOG_SQRT_2PI
    log_det = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
    return (gaussian - log_det).sum(-1)


class _SquashedSample(torch.autograd.Function):
    """squashed_sample's (a, log pi(a)) from (mean, log_std, noise) as one autograd node.

    Backward, from log pi = sum(-z^2 / 2 - log_std - log sqrt(2 pi) - log(1 - a^2)) with u = mean + std * noise,
    z = (u - mean) / std and a = tanh(u), each partial derivative taken with the others held:
      d log pi / du = 2 a - z / std,  d log pi / d mean = z / std,  d log pi / d log_std = z^2 - 1,
      da / du = 1 - a^2,  du / d mean = 1,  du / d log_std = std * noise.
    So g_u = g_a (1 - a^2) + g_lp (2 a - z / std), g_mean = g_u + g_lp z / std and
    g_log_std = g_u std noise + g_lp (z^2 - 1): the chain rule autograd would apply to the recorded ops, in
    fewer ops (equal to it within fp32 rounding; tests/test_rlcore_algos.py checks it in float64). noise gets no
    gradient.
    """

    @staticmethod
    def forward(ctx, mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        action, log_prob, std, z = _squash(mean, log_std, noise)
        ctx.save_for_backward(action, std, z, noise)
        return action, log_prob

    @staticmethod
    def backward(ctx, grad_action: torch.Tensor, grad_log_prob: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, None]:
        action, std, z, noise = ctx.saved_tensors
        grad_lp = grad_log_prob.unsqueeze(-1)
        z_over_std = z / std
        grad_u = grad_action * (1.0 - action * action) + grad_lp * (2.0 * action - z_over_std)
        grad_mean = grad_u + grad_lp * z_over_std
        grad_log_std = grad_u * std * noise + grad_lp * (z * z - 1.0)
        return grad_mean, grad_log_std, None


class TwinCritic(nn.Module):
    """Two independent Q networks Q(obs, action) on cat([obs, action]) (SB3 ContinuousCritic).

    The two networks run one after the other, not as one batched (stacked-weight) pass: on this project's CPU
    the stacked pass was slower in fp32 and in bf16 (bench/stacked_critic.py: the batched products' backward
    copies its transposed operands; README "Benchmarks").
    """

    def __init__(self, obs_dim: int, act_dim: int, net: NetConfig) -> None:
        super().__init__()
        self.qf0 = mlp(obs_dim + act_dim, net.net_arch, net.activation, 1)
        self.qf1 = mlp(obs_dim + act_dim, net.net_arch, net.activation, 1)
        self._hidden = (tuple(linear_layers(self.qf0)[:-1]), tuple(linear_layers(self.qf1)[:-1]))
        self._activation = _FUNCTIONAL[net.activation]

    def _q(self, index: int, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        head = (self.qf0, self.qf1)[index][-1]
        if dtype == torch.bfloat16 and self._activation is F.relu and cpu_bf16.q_usable(x, head):
            return cpu_bf16.relu_q(x, self._hidden[index], head)  # the head fused into the last layer's pass
        latent = hidden_pass(self._hidden[index], self._activation, x, dtype)
        return F.linear(latent, head.weight, head.bias).squeeze(-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor,
                dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Both Q values (fp32), each of shape (B,); hidden layers in `dtype` (module docstring)."""
        x = torch.cat([obs, action], dim=-1).to(dtype)  # cast once for both networks (a no-op in fp32)
        return self._q(0, x, dtype), self._q(1, x, dtype)

    def regression_backward(self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor, dtype: torch.dtype,
                            weight: float) -> torch.Tensor:
        """The critic loss weight * (MSE(q1, target) + MSE(q2, target)) with its gradient accumulated into the
        parameters' .grad, as `loss.backward()`; returns the loss, detached.

        Where both networks take the fused bf16 Q path, the gradient is computed directly, without an autograd
        graph (rlcore.cpu_bf16.q_regression: the same gradients bitwise); elsewhere through autograd.
        """
        x = torch.cat([obs, action], dim=-1).to(dtype)
        heads = (self.qf0[-1], self.qf1[-1])
        if (dtype == torch.bfloat16 and self._activation is F.relu and cpu_bf16.DIRECT_REGRESSION
                and cpu_bf16.q_usable(x, heads[0]) and cpu_bf16.q_usable(x, heads[1])):
            return cpu_bf16.q_regression(x, tuple(zip(self._hidden, heads, strict=True)), target, weight)
        loss = weight * (F.mse_loss(self._q(0, x, dtype), target) + F.mse_loss(self._q(1, x, dtype), target))
        loss.backward()
        return loss.detach()

    def q1(self, obs: torch.Tensor, action: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The first Q network alone, shape (B,) (TD3's actor loss needs no second critic)."""
        return self._q(0, torch.cat([obs, action], dim=-1), dtype)


class MlpExtractor(nn.Module):
    """Separate policy and value trunks (SB3 MlpExtractor with pi/vf lists, no shared layers)."""

    def __init__(self, obs_dim: int, net: NetConfig) -> None:
        super().__init__()
        self.policy_net = mlp(obs_dim, net.net_arch, net.activation)
        self.value_net = mlp(obs_dim, net.net_arch, net.activation)


class ActorCritic(nn.Module):
    """PPO's Gaussian policy with a state-independent log std, and its value function (SB3 layout).

    Parameter order (log_std first) matches SB3's ActorCriticPolicy, so an optimizer built on
    `parameters()` has SB3's param order.
    """

    def __init__(self, obs_dim: int, act_dim: int, net: NetConfig, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.mlp_extractor = MlpExtractor(obs_dim, net)
        self.action_net = nn.Linear(net.net_arch[-1], act_dim)
        self.value_net = nn.Linear(net.net_arch[-1], 1)
        self._activation = _FUNCTIONAL[net.activation]
        self._policy_layers = tuple(linear_layers(self.mlp_extractor.policy_net))
        self._value_layers = tuple(linear_layers(self.mlp_extractor.value_net))
        _orthogonal_init(self)

    def _trunk(self, layers: tuple[nn.Linear, ...], obs: torch.Tensor) -> torch.Tensor:
        """The same arithmetic as the trunk's Sequential, without nn.Module call overhead per layer (the
        layers are looked up once, at construction): PPO runs these small MLPs once per env step and twice
        per minibatch, where the dispatch cost rivals the math."""
        x = obs
        for layer in layers:
            x = self._activation(F.linear(x, layer.weight, layer.bias))
        return x

    def action_head(self) -> nn.Linear:
        """The Gaussian mean's layer (the deployed action is the mean, clipped)."""
        return self.action_net

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The Gaussian mean over unsquashed actions (B, A)."""
        head = self.action_net
        return F.linear(self._trunk(self._policy_layers, obs), head.weight, head.bias)

    def sample_action(self, obs: torch.Tensor) -> torch.Tensor:
        """An unclipped Gaussian sample (B, A), without its log-probability (acting needs none)."""
        mean = self.mean(obs)
        return mean + self.log_std.exp() * torch.randn_like(mean)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An unclipped Gaussian sample and its log-probability (B, A), (B,); computed from the noise itself."""
        mean = self.mean(obs)
        noise = torch.randn_like(mean)
        log_prob = (-0.5 * noise.square() - self.log_std - _LOG_SQRT_2PI).sum(-1)
        return mean + self.log_std.exp() * noise, log_prob

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log N(actions; mean(obs), exp(log_std)) summed over action dims, shape (B,)."""
        return self.log_prob_at(self.mean(obs), actions)

    def log_prob_at(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log_prob for an already computed mean (PPO's anchor needs the mean too: one trunk pass)."""
        z = (actions - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - _LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy of the Gaussian, the same for every state (state-independent std): sum(log_std + 0.5 log 2 pi e)."""
        return (self.log_std + 0.5 + _LOG_SQRT_2PI).sum()

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs), shape (B,)."""
        head = self.value_net
        return F.linear(self._trunk(self._value_layers, obs), head.weight, head.bias).squeeze(-1)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The deployed action: the Gaussian mean clipped to [-1, 1] (SB3 clips to the bounds)."""
        return self.mean(obs).clamp(-1.0, 1.0)

    def trunk(self) -> list[nn.Linear]:
        """policy_net layers, then action_net."""
        return linear_layers(self.mlp_extractor.policy_net, self.action_net)

    def set_std(self, std: float) -> None:
        """Make the Gaussian's std `std` on every action dim."""
        with torch.no_grad():
            self.log_std.fill_(math.log(std))


def _orthogonal_init(model: ActorCritic) -> None:
    """SB3's ortho_init: gain sqrt(2) in the trunks, 0.01 on the action head, 1 on the value head."""
    for module, gain in ((model.mlp_extractor, math.sqrt(2)), (model.action_net, 0.01), (model.value_net, 1.0)):
        for layer in linear_layers(module):
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)
