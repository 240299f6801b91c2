"""bf16 ReLU layers on the CPU through MKL's bf16 matrix product, which writes fp32 (TD3/SAC `precision: bf16`).

Why: torch runs a bf16 product on the CPU through oneDNN, which spends ~20-25 us per call before any arithmetic,
whatever the size. At batch 256 that is a third of each product, and a SAC update makes 29 of them. MKL's
`cblas_gemm_bf16bf16f32` (inside torch's own libtorch_cpu on the x86 Linux wheels; nothing to install) has about
half that cost per call on small products (`python bench/offpolicy_updates.py --threads 1 --products --batch-sizes`)
and writes its fp32 accumulator instead of rounding it to bf16, so the bias, the ReLU and its backward also run
in fp32, which is faster than bf16 elementwise on these CPUs. Above `MAX_ROWS` rows the oneDNN path is as fast or
faster, so larger batches keep it (rlcore.networks.hidden_pass), as does any build without the symbol. Measured
gain and its limits: docs/results.md "bf16 products through MKL".

Arithmetic of one layer: bf16(x) @ bf16(W)^T accumulated and returned in fp32, + b (fp32), ReLU (fp32). A layer's
input is rounded to bf16 once, for its product; the stack's output stays fp32. Backward: the ReLU mask in fp32,
the incoming gradient rounded to bf16 for the two products, whose fp32 results are the weight and input gradients;
the bias gradient is the fp32 column sum. Parameters stay fp32 leaves and get fp32 gradients.
"""

from __future__ import annotations

import ctypes
import os

import torch

from rlcore.precision import bf16_supported

MAX_ROWS = 256
"""Largest batch that takes this path. On this project's CPU a [256, 256] layer's MKL product is faster than
oneDNN's up to 256 rows and about even at 384 (`bench/offpolicy_updates.py --products`); whole SAC and TD3 updates
at batches 384 and 512 gained nothing from it, or lost (docs/results.md "bf16 products through MKL")."""

ENABLED = True
"""Switch for A/B measurements (bench/offpolicy_updates.py --onednn-baseline) and tests; on by default."""

_ROW_MAJOR, _COL_MAJOR, _NO_TRANS, _TRANS = 101, 102, 111, 112  # CBLAS enum values


def _load_gemm():
    """MKL's cblas_gemm_bf16bf16f32 from torch's CPU library, or None where this build lacks it."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        gemm = lib.cblas_gemm_bf16bf16f32
    except (OSError, AttributeError):
        return None
    i, p, f = ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    gemm.restype = None
    gemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    return gemm


_GEMM = _load_gemm()
_NATIVE_BF16 = bf16_supported(torch.device("cpu"))
"""MKL's bf16 product is used only where the CPU has bf16 arithmetic (AVX512-BF16 or AMX), as bf16 training is."""


def available() -> bool:
    """True when this torch build carries MKL's bf16 product, the CPU runs bf16 natively and the path is enabled."""
    return ENABLED and _GEMM is not None and _NATIVE_BF16


def usable(x: torch.Tensor) -> bool:
    """True when a hidden stack on `x` takes this path: a CPU batch of at most MAX_ROWS rows."""
    return available() and x.device.type == "cpu" and x.dim() == 2 and x.shape[0] <= MAX_ROWS


def _checked(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`t` as a contiguous 2-D CPU tensor of `dtype`: MKL reads raw pointers, so nothing else may reach it."""
    if t.dtype != dtype or t.device.type != "cpu" or t.dim() != 2 or not t.is_contiguous():
        raise ValueError(f"bf16 GEMM operand must be a contiguous 2-D CPU {dtype} tensor, got {t.dtype} "
                         f"{tuple(t.shape)} on {t.device}")
    return t


def linear_into(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> None:
    """out (m, n) fp32 += x (m, k) @ weight (n, k)^T, both bf16 (out holds the bias already); every operand is
    checked first, since MKL trusts the pointers and sizes it is given."""
    _checked(out, torch.float32)
    m, k = _checked(x, torch.bfloat16).shape
    _checked(weight, torch.bfloat16)
    n = weight.shape[0]
    if weight.shape[1] != k or tuple(out.shape) != (m, n):
        raise ValueError(f"bf16 GEMM shapes do not match: {tuple(x.shape)} @ {tuple(weight.shape)}^T "
                         f"into {tuple(out.shape)}")
    _GEMM(_ROW_MAJOR, _NO_TRANS, _TRANS, m, n, k, 1.0, x.data_ptr(), k, weight.data_ptr(), k, 1.0,
          out.data_ptr(), n)


def _weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad (m, n)^T @ x (m, k) -> (n, k) fp32, written as the column-major product x^T grad (faster in MKL)."""
    m, n = grad.shape
    k = x.shape[1]
    out = torch.empty(n, k)
    _GEMM(_COL_MAJOR, _NO_TRANS, _TRANS, k, n, m, 1.0, x.data_ptr(), k, grad.data_ptr(), n, 0.0, out.data_ptr(), k)
    return out


def _input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """grad (m, n) @ weight (n, k) -> (m, k) fp32."""
    m, n = grad.shape
    k = weight.shape[1]
    out = torch.empty(m, k)
    _GEMM(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, k, n, 1.0, grad.data_ptr(), n, weight.data_ptr(), k, 0.0,
          out.data_ptr(), k)
    return out


def _forward(x: torch.Tensor, params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The stack's fp32 output, and per layer its bf16 input, bf16 weight and fp32 output (for backward)."""
    saved: list[torch.Tensor] = []
    x_bf16 = x.to(torch.bfloat16).contiguous()
    out = x
    for i in range(0, len(params), 2):
        weight = params[i].detach().to(torch.bfloat16).contiguous()
        bias = params[i + 1].detach()
        out = bias.float().expand(x_bf16.shape[0], bias.shape[0]).clone()
        linear_into(out, x_bf16, weight)
        out.relu_()
        saved += [x_bf16, weight, out]
        if i + 2 < len(params):
            x_bf16 = out.to(torch.bfloat16)
    return out, saved


class _ReluStack(torch.autograd.Function):
    """ReLU(Linear) layers with MKL bf16 products; inputs (x, w0, b0, w1, b1, ...), fp32 output."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        out, saved = _forward(x, params)
        ctx.save_for_backward(*saved)
        ctx.input_dtype = x.dtype
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        needs = ctx.needs_input_grad
        n_layers = len(saved) // 3
        grads: list[torch.Tensor | None] = [None] * (2 * n_layers)
        grad = grad.float().contiguous()
        for i in reversed(range(n_layers)):
            x_bf16, weight, out = saved[3 * i:3 * i + 3]
            grad = torch.ops.aten.threshold_backward(grad, out, 0)
            grad_bf16 = _checked(grad.to(torch.bfloat16), torch.bfloat16)
            if needs[1 + 2 * i]:
                grads[2 * i] = _weight_grad(grad_bf16, x_bf16)
            if needs[2 + 2 * i]:
                grads[2 * i + 1] = grad.sum(0)
            if i == 0 and not needs[0]:
                return (None, *grads)
            grad = _input_grad(grad_bf16, weight)
        return (grad.to(ctx.input_dtype), *grads)


def relu_stack(x: torch.Tensor, layers: tuple[torch.nn.Linear, ...]) -> torch.Tensor:
    """ReLU(Linear(x)) through `layers` with MKL bf16 products (module docstring); fp32 (B, out); x fp32 or bf16.

    Callers check `usable(x)` first. Without autograd work to record (no_grad, or nothing requires a gradient)
    the layers run directly, saving nothing.
    """
    params = tuple(t for layer in layers for t in (layer.weight, layer.bias))
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        return _ReluStack.apply(x, *params)
    with torch.no_grad():
        return _forward(x, params)[0]
