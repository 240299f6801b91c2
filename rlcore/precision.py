"""The compute dtype of the TD3/SAC updates (config `precision`) and whether a device runs it natively.

bf16 is offered only where the hardware has bf16 arithmetic: a CPU with AVX512-BF16 or AMX (oneDNN's bf16
products; measured ~2x fp32 at batch 256 and ~5x at batch 2048 on one core of this project's CPU, README
"Benchmarks") or a CUDA GPU with native bf16 (compute capability 8.0+). Elsewhere bf16 would be emulated,
slower than fp32, so it is refused instead of silently slowing a run down.
"""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}


def bf16_supported(device: torch.device) -> bool:
    """True when `device` has native bf16 arithmetic (see the module docstring)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the hidden-layer products; ValueError when `device` cannot run `precision` natively."""
    if precision == "bf16" and not bf16_supported(device):
        raise ValueError(f"precision bf16 needs native bf16 arithmetic, which {device.type} here lacks "
                         "(a CPU with AVX512-BF16 or AMX, or a CUDA GPU of compute capability 8.0+); use fp32")
    return DTYPES[precision]
