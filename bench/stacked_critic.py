"""Does one batched pass over both critics (stacked weights, torch.baddbmm) beat two separate passes?

The twin critic's loss forward + backward (the critic step's arithmetic), timed with the two Q networks run one
after the other as rlcore.networks.TwinCritic does, and with their weights stacked into (2, in, out) tensors run
as one batched product per layer (LeanRL's and FastTD3's layout), in fp32 and in bf16 (the same casts as the
engine's mixed precision). The two variants take turns; the script prints the median time of each and the
largest difference between their Q values and their gradients (the stacked pass is a different kernel, so
equal only to rounding).

    python bench/stacked_critic.py --batch-sizes 256 2048 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcore.config import NetConfig
from rlcore.networks import TwinCritic, linear_layers
from rlcore.precision import bf16_supported


class StackedTwinCritic(nn.Module):
    """Both Q networks as one: layer l holds weight (2, in, out) and bias (2, 1, out), copied from a TwinCritic."""

    def __init__(self, twin: TwinCritic) -> None:
        super().__init__()
        pairs = list(zip(linear_layers(twin.qf0), linear_layers(twin.qf1), strict=True))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([a.weight.detach().t(), b.weight.detach().t()]).contiguous()) for a, b in pairs)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([a.bias.detach(), b.bias.detach()])[:, None, :].clone()) for a, b in pairs)

    def forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Q values (2, B), hidden layers in `dtype`, the head in fp32 (as the engine)."""
        h = x.to(dtype).expand(2, *x.shape)
        for w, b in zip(list(self.weights)[:-1], list(self.biases)[:-1], strict=True):
            h = F.relu(torch.baddbmm(b.to(dtype), h, w.to(dtype)))
        return torch.baddbmm(self.biases[-1], h.float(), self.weights[-1]).squeeze(-1)


def _loss_step(q: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    loss = F.mse_loss(q, target) + F.mse_loss(q2, target)
    loss.backward()
    return loss


def compare(twin: TwinCritic, stacked: StackedTwinCritic, batch: int, dtype: torch.dtype, steps: int,
            turns: int) -> tuple[float, float, np.ndarray, float, float]:
    """(separate us, stacked us, per-turn speed-ups, max |dQ|, max |d grad of the first layer's weight|)."""
    x, target = torch.randn(batch, twin.qf0[0].in_features), torch.randn(batch)
    empty = torch.empty(batch, 0)

    def separate() -> torch.Tensor:
        q1, q2 = twin(x, empty, dtype)
        return _loss_step(q1, q2, target)

    def batched() -> torch.Tensor:
        q = stacked(x, dtype)
        return _loss_step(q[0], q[1], target)

    twin.zero_grad(set_to_none=True)
    stacked.zero_grad(set_to_none=True)
    separate(), batched()
    g_diff = (stacked.weights[0].grad[0].t() - twin.qf0[0].weight.grad).abs().max().item()
    with torch.no_grad():
        q_diff = (stacked(x, dtype) - torch.stack(twin(x, empty, dtype))).abs().max().item()
    times: dict[str, list[float]] = {"separate": [], "stacked": []}
    for _ in range(turns):
        for label, fn in (("separate", separate), ("stacked", batched)):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[label].append((time.perf_counter() - start) / steps * 1e6)
    speedups = np.array(times["separate"]) / np.array(times["stacked"])
    return float(np.median(times["separate"])), float(np.median(times["stacked"])), speedups, q_diff, g_diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 2048])
    parser.add_argument("--in-dim", type=int, default=101, help="obs + action dims (soccer: 89 + 12)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant and turn")
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = {"fp32": torch.float32}
    if bf16_supported(torch.device("cpu")):
        precisions["bf16"] = torch.bfloat16
    torch.manual_seed(0)
    twin = TwinCritic(args.in_dim, 0, NetConfig(net_arch=(256, 256)))
    stacked = StackedTwinCritic(twin)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, in {args.in_dim}, net [256, 256], "
          f"critic loss forward + backward, {args.turns} turns of {args.steps} steps")
    for batch in args.batch_sizes:
        for name, dtype in precisions.items():
            sep, stk, speedups, q_diff, g_diff = compare(twin, stacked, batch, dtype, args.steps, args.turns)
            print(f"batch {batch:>5} {name}: separate {sep:7.0f} us | stacked {stk:7.0f} us | stacked speed-up "
                  f"{np.median(speedups):4.2f}x (median of {len(speedups)} turns, {speedups.min():.2f}-"
                  f"{speedups.max():.2f}) | max |dQ| {q_diff:.1e}, max |d grad W0| {g_diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
