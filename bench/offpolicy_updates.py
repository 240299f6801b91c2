"""Gradient updates per second, ours vs Stable-Baselines3, same hyper-parameters, same process.

Both learners get a replay buffer pre-filled with the same random transitions and then run gradient
steps with [256, 256] networks at each batch size (the issue's setting is batch 256; 2048 and 8192 are
FastTD3's large-batch regime). SB3 is timed through its own `train(gradient_steps, batch_size)` (which
includes its per-step logging syncs); ours through `update(replay.sample(...))`, the runner's exact call,
once per `--precisions` entry (fp32, and bf16 mixed precision where the device has it). A burn-in is
excluded, and the sides take turns in blocks so all see the same machine conditions; each ratio is the
median over blocks of ours / SB3 in the same turn. Each batch size gets the same number of samples per
side (`--samples`), so larger batches run fewer updates.

    python bench/offpolicy_updates.py --algos sac td3 --batch-sizes 256 2048 8192 --threads 1
    python bench/offpolicy_updates.py --profile    # + FLOPs, matrix-product time and the GEMM peak
    python bench/offpolicy_updates.py --threads 1 --onednn-baseline   # + bf16 with every product in oneDNN
    python bench/offpolicy_updates.py --threads 1 --mkl-baseline   # + bf16 through MKL even where it measures slow
    python bench/offpolicy_updates.py --threads 1 --torch-ops-baseline   # + bf16 without the fused C kernel
    python bench/offpolicy_updates.py --threads 1 --autograd-critic-baseline   # + bf16 critic step via autograd
    python bench/offpolicy_updates.py --threads 1 --precisions bf16 --onednn-baseline --mkl-max-rows 100000 \
        --batch-sizes 384 512                                         # the MKL path past its threshold
    python bench/offpolicy_updates.py --threads 1 --products --batch-sizes   # only the per-product times
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from rlcore import cpu_bf16
from rlcore.algos import build_algorithm
from rlcore.buffers import ReplayBuffer
from rlcore.cliutil import UsageError, resolve_device
from rlcore.config import BufferConfig, NetConfig, SACConfig, TD3Config
from rlcore.precision import bf16_supported


class _BoxEnv(gym.Env):
    """A do-nothing env that only carries the spaces SB3 needs to build its networks."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, np.float32), 0.0, False, False, {}


def _transitions(n: int, obs_dim: int, act_dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"obs": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "next_obs": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
            "rewards": rng.normal(size=n).astype(np.float32),
            "terminated": (rng.uniform(size=n) < 0.01).astype(np.float32)}


def ours_update_fn(algo: str, data: dict[str, np.ndarray], device: str = "cpu", precision: str = "fp32",
                   batch_size: int = 256, cuda_graphs: bool = False, bf16_path: str = "fused") -> Callable[[int], None]:
    """n -> run n of our gradient updates, each on a fresh batch (the runner's exact call). `bf16_path` on the CPU
    for the whole call: "fused" (the default: MKL products, the C kernel's elementwise passes where it is built,
    the critic's regression step without autograd, through the product rlcore.cpu_bf16.chosen_product measures
    best), "mkl" (the same through MKL's product even where it measures slow), "autograd-critic" (the default, but
    the critic step through autograd), "torch-ops" (the chosen product, torch's elementwise ops; rlcore.cpu_bf16.FUSED
    off) or "onednn" (every product through oneDNN; rlcore.cpu_bf16 off). The variants of the path take MKL's product
    where the measured choice is oneDNN."""
    obs_dim, act_dim = data["obs"].shape[1], data["actions"].shape[1]
    buffer = BufferConfig(buffer_size=len(data["obs"]), batch_size=batch_size)
    net = NetConfig(net_arch=(256, 256))
    cls = SACConfig if algo == "sac" else TD3Config
    cfg = cls(net=net, buffer=buffer, precision=precision, cuda_graphs=cuda_graphs)
    learner = build_algorithm(algo, obs_dim, -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32), cfg,
                              device)
    replay = ReplayBuffer(obs_dim, act_dim, len(data["obs"]), device, seed=0)
    replay.add(*(torch.as_tensor(data[k]) for k in ("obs", "actions", "rewards", "next_obs", "terminated")))

    def run(n: int) -> None:
        measured = cpu_bf16.chosen_product()  # the sides take turns in one process: each sets its own path
        cpu_bf16.ENABLED = bf16_path != "onednn"
        if bf16_path != "fused":
            cpu_bf16.PRODUCT = "mkl" if bf16_path == "mkl" or measured == "onednn" else measured
        cpu_bf16.FUSED = bf16_path in ("fused", "mkl", "autograd-critic")
        cpu_bf16.DIRECT_REGRESSION = bf16_path in ("fused", "mkl")
        try:
            for _ in range(n):
                learner.update(replay.sample(batch_size).normalized(learner.normalizer))
        finally:
            cpu_bf16.ENABLED = cpu_bf16.FUSED = cpu_bf16.DIRECT_REGRESSION = True
            cpu_bf16.PRODUCT = measured

    return run


def sb3_update_fn(algo: str, data: dict[str, np.ndarray], device: str = "cpu",
                  batch_size: int = 256) -> Callable[[int], None]:
    """n -> SB3's own `train(gradient_steps=n, batch_size)` (its per-step logging syncs included)."""
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.logger import configure

    obs_dim, act_dim = data["obs"].shape[1], data["actions"].shape[1]
    cls = SAC if algo == "sac" else TD3
    model = cls("MlpPolicy", _BoxEnv(obs_dim, act_dim), buffer_size=len(data["obs"]), batch_size=batch_size,
                policy_kwargs={"net_arch": [256, 256]}, device=device, seed=0)
    model.set_logger(configure(None, [""]))
    buf = model.replay_buffer
    for i in range(len(data["obs"])):
        buf.add(data["obs"][i:i + 1], data["next_obs"][i:i + 1], data["actions"][i:i + 1], data["rewards"][i:i + 1],
                data["terminated"][i:i + 1].astype(bool), [{}])
    return lambda n: model.train(gradient_steps=n, batch_size=batch_size)


def interleaved_rates(runs: dict[str, Callable[[int], None]], steps: int, blocks: int, burn_in: int,
                      device: str = "cpu") -> dict[str, list[float]]:
    """Updates/s per block for each side, the sides taking turns block by block.

    Turns matter on a shared machine: throughput drifts by 20-30% over seconds, so timing one side after
    the other can hand either side a slow period; alternating blocks gives both the same conditions.
    On a GPU each block ends with a synchronize, so queued kernels count in the block that queued them.
    """
    def finish() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    for run in runs.values():
        run(burn_in)
    finish()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    block = max(1, steps // blocks)
    for _ in range(blocks):
        for name, run in runs.items():
            start = time.perf_counter()
            run(block)
            finish()
            rates[name].append(block / (time.perf_counter() - start))
    return rates


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def gemm_peak_gflops(size: int = 256, seconds: float = 1.0) -> float:
    """fp32 GFLOP/s of a size^3 matrix product on the CPU: the ceiling of an update made of such products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(20):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - start) / 1e9


def product_times(rows: tuple[int, ...] = (8, 128, 256, 384, 512, 1024, 2048), width: int = 256,
                  repeats: int = 300) -> list[tuple[int, float, float, float, float]]:
    """(rows, fp32 us, oneDNN bf16 us, MKL bf16 us, our bf16 us; nan where absent) per call of one [width, width]
    layer's product (no bias) on a batch of `rows`: where rlcore.cpu_bf16.MAX_ROWS comes from, the per-call cost
    it avoids, and how MKL's product and ours (rlcore/bf16_gemm.c) compare on this CPU."""
    def per_call_us(fn: Callable, *args: torch.Tensor) -> float:
        for _ in range(20):
            fn(*args)
        start = time.perf_counter()
        for _ in range(repeats):
            fn(*args)
        return (time.perf_counter() - start) / repeats * 1e6

    table = []
    for m in rows:
        x, w = torch.randn(m, width), torch.randn(width, width)
        x16, w16, out = x.bfloat16(), w.bfloat16(), torch.zeros(m, width)
        fp32_bf16 = [per_call_us(cpu_bf16._linear_into, gemm, out, x16, w16) if gemm is not None else float("nan")
                     for gemm in (cpu_bf16._GEMM, cpu_bf16._own_gemm())]
        table.append((m, per_call_us(torch.mm, x, w.t()), per_call_us(torch.mm, x16, w16.t()), *fp32_bf16))
    return table


def update_profile(algo: str, data: dict[str, np.ndarray], updates: int = 100) -> tuple[float, float, float]:
    """(MFLOP per update, ms in matrix products per update, ms in all ops per update) of our CPU update: the
    FLOPs counted by torch's FlopCounterMode, the times by the torch profiler (self CPU time per op)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    run = ours_update_fn(algo, data)
    run(50)
    counter = FlopCounterMode(display=False)
    with counter:
        run(2)  # TD3's actor step runs every other update
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(updates)
    events = prof.key_averages()
    matmul_us = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    total_us = sum(e.self_cpu_time_total for e in events)
    return counter.get_total_flops() / 2 / 1e6, matmul_us / updates / 1e3, total_us / updates / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["sac", "td3"], choices=["sac", "td3"])
    parser.add_argument("--batch-sizes", nargs="*", type=int, default=[256],
                        help="batch sizes of the update timing (none: skip it, e.g. with --products)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                        help="our update's precision(s), each timed against SB3 (fp32) in the same turns")
    parser.add_argument("--samples", type=int, default=512_000,
                        help="timed samples per side and batch size (2000 updates at batch 256)")
    parser.add_argument("--blocks", type=int, default=10, help="turns each side takes (interleaved)")
    parser.add_argument("--burn-in", type=int, default=200, help="untimed updates per side at batch 256 "
                        "(scaled down like the timed ones at larger batches)")
    parser.add_argument("--obs-dim", type=int, default=89)
    parser.add_argument("--act-dim", type=int, default=12)
    parser.add_argument("--buffer", type=int, default=20_000)
    parser.add_argument("--device", default="cpu", help="torch device for both sides: cpu, cuda, cuda:1, auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default). On a machine "
                        "another job also loads, 1 thread avoids OpenMP threads waiting on each other")
    parser.add_argument("--products", action="store_true", help="CPU: also time one [256, 256] layer's product "
                        "per call at batches of 8-2048 rows: fp32, bf16 through oneDNN, bf16 through MKL")
    parser.add_argument("--onednn-baseline", action="store_true", help="CPU bf16: also time our bf16 update "
                        "with every product through oneDNN (without rlcore.cpu_bf16's MKL path)")
    parser.add_argument("--mkl-baseline", action="store_true", help="CPU bf16: also time our bf16 update "
                        "through MKL's products even where they measure slower than oneDNN's (an AMD CPU)")
    parser.add_argument("--torch-ops-baseline", action="store_true", help="CPU bf16: also time our bf16 update "
                        "with MKL's products but torch's elementwise ops (without rlcore/cpu_bf16_kernel.c)")
    parser.add_argument("--autograd-critic-baseline", action="store_true", help="CPU bf16: also time our bf16 "
                        "update with the critic's regression step through autograd (without rlcore.cpu_bf16."
                        "q_regression)")
    parser.add_argument("--mkl-max-rows", type=int, default=cpu_bf16.MAX_ROWS, help="largest batch whose bf16 "
                        "products go through MKL (rlcore.cpu_bf16.MAX_ROWS; raise it to time the MKL path on larger "
                        "batches against --onednn-baseline)")
    parser.add_argument("--cuda-graphs", action="store_true", help="CUDA: also time each precision with the "
                        "update replayed from CUDA graphs")
    parser.add_argument("--profile", action="store_true",
                        help="CPU: also print the FLOPs of our update, the time its matrix products take (torch "
                        "profiler) and the machine's fp32 matrix-product peak, which bound the ratio")
    args = parser.parse_args()
    try:
        args.device = str(resolve_device(args.device))
    except UsageError as exc:
        parser.error(str(exc))
    if args.profile and args.device != "cpu":
        parser.error("--profile measures the CPU update; leave --device at cpu")
    if any(b <= 0 or b > args.buffer for b in args.batch_sizes):
        parser.error(f"--batch-sizes must be in [1, --buffer {args.buffer}]")
    if "bf16" in args.precisions and not bf16_supported(torch.device(args.device)):
        parser.error(f"--precisions bf16: {args.device} has no native bf16 arithmetic here")
    if args.products and (args.device != "cpu" or not cpu_bf16.supported()):
        parser.error("--products times CPU products and needs a bf16 product with fp32 output (rlcore.cpu_bf16)")
    if args.mkl_baseline and cpu_bf16._GEMM is None:
        parser.error("--mkl-baseline: this torch build has no MKL bf16 product")
    for flag in ("onednn_baseline", "mkl_baseline", "torch_ops_baseline", "autograd_critic_baseline"):
        if getattr(args, flag) and (args.device != "cpu" or "bf16" not in args.precisions):
            parser.error(f"--{flag.replace('_', '-')} compares CPU bf16 paths: needs --device cpu and bf16 in "
                         "--precisions")
    if args.cuda_graphs and torch.device(args.device).type != "cuda":
        parser.error("--cuda-graphs needs --device cuda")
    if args.mkl_max_rows < 0:
        parser.error("--mkl-max-rows must be >= 0")
    cpu_bf16.MAX_ROWS = args.mkl_max_rows
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = _transitions(args.buffer, args.obs_dim, args.act_dim)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"obs {args.obs_dim}, act {args.act_dim}, net [256, 256], {args.samples:,} timed samples per side and "
          f"batch size, {args.blocks} turns")
    if args.device == "cpu" and "bf16" in args.precisions and cpu_bf16.supported():
        seconds = cpu_bf16.product_seconds()
        times = ", ".join(f"{name} {t * 1e6:.0f} us" for name, t in seconds.items())
        print(f"bf16 [256, 256] product on 256 rows: {times}; our bf16 update takes {cpu_bf16.chosen_product()} "
              "(rlcore.cpu_bf16.chosen_product)")
    for algo in args.algos:
        for batch in args.batch_sizes:
            steps = max(args.blocks, args.samples // batch)
            burn_in = max(2, args.burn_in * 256 // batch)
            variants = [(p, False) for p in args.precisions] + [(p, True) for p in args.precisions if args.cuda_graphs]
            runs = {p + ("+graphs" if g else ""): ours_update_fn(algo, data, args.device, p, batch, g)
                    for p, g in variants}
            if args.mkl_baseline:
                runs["bf16-mkl"] = ours_update_fn(algo, data, args.device, "bf16", batch, bf16_path="mkl")
            if args.torch_ops_baseline:
                runs["bf16-torch-ops"] = ours_update_fn(algo, data, args.device, "bf16", batch, bf16_path="torch-ops")
            if args.autograd_critic_baseline:
                runs["bf16-autograd-critic"] = ours_update_fn(algo, data, args.device, "bf16", batch,
                                                              bf16_path="autograd-critic")
            if args.onednn_baseline:
                runs["bf16-onednn"] = ours_update_fn(algo, data, args.device, "bf16", batch, bf16_path="onednn")
            runs["sb3"] = sb3_update_fn(algo, data, args.device, batch)
            rates = interleaved_rates(runs, steps, args.blocks, burn_in, args.device)
            sb3 = np.array(rates["sb3"])
            line = [f"{algo.upper()} batch {batch:>5}: SB3 {np.median(sb3):7.1f} upd/s "
                    f"{np.median(sb3) * batch:>9,.0f} samples/s"]
            for p in (name for name in runs if name != "sb3"):
                ours, ratios = np.array(rates[p]), np.array(rates[p]) / sb3
                line.append(f"ours {p} {np.median(ours):7.1f} upd/s {np.median(ours) * batch:>9,.0f} samples/s "
                            f"ratio {np.median(ratios):4.2f}x ({ratios.min():.2f}-{ratios.max():.2f})")
            print(" | ".join(line), flush=True)
    if args.products:
        print("one [256, 256] layer's product per call (us): rows, fp32, bf16 oneDNN, bf16 MKL (fp32 out), "
              "bf16 ours (fp32 out)")
        for m, fp32_us, onednn_us, mkl_us, own_us in product_times():
            print(f"{m:>5} rows: {fp32_us:7.1f} {onednn_us:7.1f} {mkl_us:7.1f} {own_us:7.1f}", flush=True)
    if args.profile:
        peak = gemm_peak_gflops()
        print(f"fp32 256x256x256 matrix product: {peak:.0f} GFLOP/s")
        for algo in args.algos:
            mflop, matmul_ms, total_ms = update_profile(algo, data)
            print(f"{algo.upper()} update (ours): {mflop:.0f} MFLOP = {mflop / peak:.1f} ms at that peak; profiled "
                  f"{matmul_ms:.1f} ms in matrix products of {total_ms:.1f} ms in all ops (profiler overhead included)")


if __name__ == "__main__":
    main()
