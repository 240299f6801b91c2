"""bf16 ReLU layers on the CPU through a bf16 matrix product that writes fp32 (TD3/SAC `precision: bf16`).

Why: torch runs a bf16 product on the CPU through oneDNN, which spends ~15-25 us per call before any arithmetic,
whatever the size. At batch 256 that is a third of each product, and a SAC update makes 29 of them. MKL's
`cblas_gemm_bf16bf16f32` (inside torch's own libtorch_cpu on the x86 Linux wheels; nothing to install) has about
half that cost per call on small products (`python bench/offpolicy_updates.py --threads 1 --products --batch-sizes`)
and writes its fp32 accumulator instead of rounding it to bf16, so the bias, the ReLU and its backward also run
in fp32, which is faster than bf16 elementwise on these CPUs. MKL picks its kernels by CPU vendor, though: on an AMD
CPU it runs generic code at fp32 speed. Our own product with the same interface (rlcore/bf16_gemm.c, AVX512-BF16,
built with the kernel below) then takes its place; which product runs is measured once per process
(chosen_product, SLOWDOWN_LIMIT), or fixed by `BOOSTER_BF16_GEMM`. Above `MAX_ROWS` rows the oneDNN path is as fast
or faster, so larger batches keep it (rlcore.networks.hidden_pass), as does a CPU where neither product is within
reach of oneDNN. Measured gain and its limits: docs/results.md "bf16 products through MKL" and "bf16 products by
CPU".

Arithmetic of one layer: bf16(x) @ bf16(W)^T accumulated and returned in fp32, + b (fp32), ReLU (fp32). A layer's
input is rounded to bf16 once, for its product; the stack's output stays fp32. Backward: the ReLU mask in fp32,
the incoming gradient rounded to bf16 for the two products, whose fp32 results are the weight and input gradients;
the bias gradient is the fp32 column sum. Parameters stay fp32 leaves and get fp32 gradients.

The elementwise work around each product (weight cast, bias, ReLU, the next layer's cast; in the backward the mask,
the rounding and the bias gradient) runs as one C pass per layer where a C compiler is there, and a whole network's
forward or backward is one call from Python (rlcore/cpu_bf16_kernel.c: built on first use into the per-user cache
folder, `$BOOSTER_CACHE`, else `$XDG_CACHE_HOME/booster-soccer-rl`, else `~/.cache/booster-soccer-rl`); otherwise
torch ops do it (the same arithmetic; `BOOSTER_BF16_KERNEL=off` forces them). A critic's regression step (forward,
MSE, backward) is one call per Q network and needs no autograd graph (q_regression). Measured: docs/results.md
"Fused elementwise work" and "Critic step without autograd".
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

from rlcore.precision import bf16_supported

MAX_ROWS = 256
"""Largest batch that takes this path. On this project's CPU a [256, 256] layer's MKL product is faster than
oneDNN's up to 256 rows and about even at 384 (`bench/offpolicy_updates.py --products`); whole SAC and TD3 updates
at batches 384 and 512 gained nothing from it, or lost (docs/results.md "bf16 products through MKL")."""

ENABLED = True
"""Switch for A/B measurements (bench/offpolicy_updates.py --onednn-baseline) and tests; on by default."""

SLOWDOWN_LIMIT = 1.5
"""How the product is chosen (chosen_product): the path takes MKL's product unless ours (rlcore/bf16_gemm.c) runs
in under 1/SLOWDOWN_LIMIT of its time, and takes neither (every product through oneDNN instead) unless the chosen
one runs in at most SLOWDOWN_LIMIT times oneDNN's. MKL picks its kernels by CPU vendor: on this project's Intel CPU
its bf16 product on 256 rows took about 0.6x oneDNN's time, on an AMD Zen 5 it runs generic code at 3.5-4x oneDNN's
and ours at about 1.05x (docs/results.md "bf16 products by CPU"). Any limit between ~1.2 and ~3 separates those
cases by a wide margin, so noise in the measurement does not flip the choice (and with it the rounding of a run)."""

GEMM_ENV = "BOOSTER_BF16_GEMM"
"""Environment variable that fixes the choice: "mkl", "own" (rlcore/bf16_gemm.c), "onednn" (this path off), or
"auto" (the default: measured, SLOWDOWN_LIMIT)."""

PRODUCTS = ("mkl", "own", "onednn")

PRODUCT: str | None = None
"""The chosen product once known (None: not chosen yet); tests and A/B measurements set it."""

FUSED = True
"""Switch for A/B measurements of the C kernel (bench/offpolicy_updates.py --torch-ops-baseline) and tests: False
runs the elementwise work as torch ops even where the kernel is built."""

DIRECT_REGRESSION = True
"""Switch for A/B measurements (bench/offpolicy_updates.py --autograd-critic-baseline) and tests: False sends the
critic's regression step through autograd (rlcore.networks.TwinCritic.regression_backward) even where q_regression
applies."""

KERNEL_SOURCE = Path(__file__).with_name("cpu_bf16_kernel.c")
GEMM_SOURCE = Path(__file__).with_name("bf16_gemm.c")
"""Built with KERNEL_SOURCE into one library: our own bf16 product (bf16_gemm), MKL's interface."""

_ROW_MAJOR, _COL_MAJOR, _NO_TRANS, _TRANS = 101, 102, 111, 112  # CBLAS enum values


def _declare_gemm(gemm):
    """`gemm` with cblas_gemm_bf16bf16f32's argument types (ours has the same interface)."""
    i, p, f = ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    gemm.restype = None
    gemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    return gemm


def _load_gemm():
    """MKL's cblas_gemm_bf16bf16f32 from torch's CPU library, or None where this build lacks it."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        return _declare_gemm(lib.cblas_gemm_bf16bf16f32)
    except (OSError, AttributeError):
        return None


_GEMM = _load_gemm()
"""MKL's product, or None."""
_GEMM_ADDRESS = ctypes.cast(_GEMM, ctypes.c_void_p).value if _GEMM is not None else None
"""Its address, which the C kernel calls (it links nothing itself)."""
_NATIVE_BF16 = bf16_supported(torch.device("cpu"))
"""The path is used only where the CPU has bf16 arithmetic (AVX512-BF16 or AMX), as bf16 training is."""


def _cache_dir() -> Path:
    if os.environ.get("BOOSTER_CACHE"):
        return Path(os.environ["BOOSTER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "booster-soccer-rl"


def _cpu_identity() -> bytes:
    """What the build's -march=native depends on: the CPU's model and feature flags (Linux), else its name."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor().encode()
    return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags"))})).encode()


def _build_kernel(target: Path) -> None:
    """Compile KERNEL_SOURCE into `target` (written under a temporary name, then moved into place)."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise FileNotFoundError("no C compiler (cc, gcc or clang) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        done = subprocess.run([compiler, "-O3", "-march=native", "-shared", "-fPIC", "-std=c99", str(KERNEL_SOURCE),
                               str(GEMM_SOURCE), "-o", str(built)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
            raise RuntimeError(f"compiling {KERNEL_SOURCE.name} failed: {first}")
        os.replace(built, target)


_KERNEL: ctypes.CDLL | None | bool = False
"""False: not tried yet; None: unavailable (torch ops do the elementwise work); else the loaded library."""
_OWN_GEMM = None
"""Our product from the loaded library where it is vectorised for AVX512-BF16, else None (set with _KERNEL)."""
_OWN_GEMM_ADDRESS: int | None = None


def _kernel() -> ctypes.CDLL | None:
    """The fused C kernel, built and cached on first use, or None (module docstring)."""
    global _KERNEL, _OWN_GEMM, _OWN_GEMM_ADDRESS
    if _KERNEL is not False:
        return _KERNEL
    _KERNEL = None
    if os.environ.get("BOOSTER_BF16_KERNEL", "").lower() == "off":
        return None
    sources = KERNEL_SOURCE.read_bytes() + GEMM_SOURCE.read_bytes()
    digest = hashlib.sha256(sources + _cpu_identity() + sys.version.encode()).hexdigest()[:16]
    target = _cache_dir() / f"cpu_bf16_{digest}.so"
    try:
        if not target.is_file():
            _build_kernel(target)
        lib = ctypes.CDLL(str(target))
    except (OSError, RuntimeError, FileNotFoundError) as exc:
        warnings.warn(f"bf16: the fused C kernel is unavailable ({exc}); torch ops do its work (same arithmetic, "
                      "slower)", stacklevel=3)
        return None
    i, p, f = ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    lib.bf16_net_forward.argtypes = [p, i, i, p, p, p, p, p, p, p, p, p]
    lib.bf16_net_forward.restype = None
    lib.bf16_net_backward.argtypes = [p, i, i, p, p, p, p, p, p, p, p, p, p, p, p]
    lib.bf16_net_backward.restype = None
    lib.bf16_q_regression.argtypes = [p, i, i, p, p, p, p, p, p, p, f, p, p, p, p, p, p, p, p]
    lib.bf16_q_regression.restype = None
    lib.bf16_gemm_vectorized.restype = ctypes.c_int
    _OWN_GEMM = _declare_gemm(lib.bf16_gemm) if lib.bf16_gemm_vectorized() else None
    _OWN_GEMM_ADDRESS = ctypes.cast(_OWN_GEMM, ctypes.c_void_p).value if _OWN_GEMM is not None else None
    _KERNEL = lib
    return lib


def _fused() -> ctypes.CDLL | None:
    """The kernel when the fused path is switched on (FUSED) and built, else None."""
    return _kernel() if FUSED else None


def _own_gemm():
    """Our product (rlcore/bf16_gemm.c) where the kernel is built and vectorised for AVX512-BF16, else None."""
    return _OWN_GEMM if _kernel() is not None else None


def supported() -> bool:
    """True when the CPU runs bf16 natively and a bf16 product with fp32 output is here (MKL's or ours)."""
    return _NATIVE_BF16 and (_GEMM is not None or _own_gemm() is not None)


def available() -> bool:
    """True when the path is supported, enabled, and its product is fast on this CPU (chosen_product)."""
    return ENABLED and supported() and chosen_product() != "onednn"


def usable(x: torch.Tensor) -> bool:
    """True when a hidden stack on `x` takes this path: a CPU batch of at most MAX_ROWS rows."""
    return available() and x.device.type == "cpu" and x.dim() == 2 and x.shape[0] <= MAX_ROWS


def chosen_product() -> str:
    """"mkl", "own" or "onednn" (SLOWDOWN_LIMIT), measured once per process (~10 ms) unless GEMM_ENV fixes it."""
    global PRODUCT
    if PRODUCT is None:
        candidates = {"mkl": _GEMM, "own": _own_gemm(), "onednn": True}
        choice = os.environ.get(GEMM_ENV, "auto").lower()
        if choice != "auto" and candidates.get(choice) is None:
            warnings.warn(f"{GEMM_ENV}={choice!r}: not one of {', '.join(p for p in PRODUCTS if candidates[p])} "
                          "here; measuring (auto)", stacklevel=2)
            choice = "auto"
        PRODUCT = choice if choice != "auto" else _measured_choice(product_seconds())
    return PRODUCT


def _measured_choice(seconds: dict[str, float]) -> str:
    """The rule of SLOWDOWN_LIMIT on measured seconds per product (a product missing here has no entry)."""
    ours = "mkl" if "mkl" in seconds else "own"
    if "own" in seconds and seconds["own"] * SLOWDOWN_LIMIT < seconds.get("mkl", float("inf")):
        ours = "own"
    return ours if seconds[ours] <= SLOWDOWN_LIMIT * seconds["onednn"] else "onednn"


def product_seconds(rows: int = 256, width: int = 256, repeats: int = 12) -> dict[str, float]:
    """Best seconds of one (rows, width) @ (width, width)^T bf16 product per product here ("mkl", "own" with fp32
    output; "onednn", torch's bf16 matmul), taking turns after a warm-up."""
    generator = torch.Generator().manual_seed(0)  # not the global one: measuring must not move a run's draws
    x = torch.randn(rows, width, generator=generator).to(torch.bfloat16)
    weight = torch.randn(width, width, generator=generator).to(torch.bfloat16)
    out = torch.zeros(rows, width)
    runs = {name: functools.partial(_linear_into, gemm, out, x, weight)
            for name, gemm in (("mkl", _GEMM), ("own", _own_gemm())) if gemm is not None}
    runs["onednn"] = functools.partial(torch.mm, x, weight.t())
    best = dict.fromkeys(runs, float("inf"))
    for i in range(repeats + 2):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if i >= 2:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def _product():
    """The chosen product (MKL's or ours) as a ctypes function; only called where available()."""
    return _own_gemm() if chosen_product() == "own" else _GEMM


def _product_address() -> int:
    """The chosen product's address, which the C kernel calls (it links nothing itself)."""
    return _OWN_GEMM_ADDRESS if chosen_product() == "own" else _GEMM_ADDRESS


def _checked(t: torch.Tensor, dtype: torch.dtype, dim: int = 2) -> torch.Tensor:
    """`t` as a contiguous `dim`-D CPU tensor of `dtype`: MKL and the C kernel read raw pointers, so nothing else
    may reach them."""
    if t.dtype != dtype or t.device.type != "cpu" or t.dim() != dim or not t.is_contiguous():
        raise ValueError(f"bf16 GEMM operand must be a contiguous {dim}-D CPU {dtype} tensor, got {t.dtype} "
                         f"{tuple(t.shape)} on {t.device}")
    return t


def linear_into(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> None:
    """out (m, n) fp32 += x (m, k) @ weight (n, k)^T, both bf16 (out holds the bias already), through the chosen
    product; every operand is checked first, since the product trusts the pointers and sizes it is given."""
    _linear_into(_product(), out, x, weight)


def _linear_into(gemm, out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> None:
    """linear_into through `gemm`."""
    _checked(out, torch.float32)
    m, k = _checked(x, torch.bfloat16).shape
    _checked(weight, torch.bfloat16)
    n = weight.shape[0]
    if weight.shape[1] != k or tuple(out.shape) != (m, n):
        raise ValueError(f"bf16 GEMM shapes do not match: {tuple(x.shape)} @ {tuple(weight.shape)}^T "
                         f"into {tuple(out.shape)}")
    gemm(_ROW_MAJOR, _NO_TRANS, _TRANS, m, n, k, 1.0, x.data_ptr(), k, weight.data_ptr(), k, 1.0,
          out.data_ptr(), n)


def _weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad (m, n)^T @ x (m, k) -> (n, k) fp32, written as the column-major product x^T grad (faster in MKL)."""
    m, n = grad.shape
    k = x.shape[1]
    out = torch.empty(n, k)
    _product()(_COL_MAJOR, _NO_TRANS, _TRANS, k, n, m, 1.0, x.data_ptr(), k, grad.data_ptr(), n, 0.0, out.data_ptr(), k)
    return out


def _input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """grad (m, n) @ weight (n, k) -> (m, k) fp32."""
    m, n = grad.shape
    k = weight.shape[1]
    out = torch.empty(m, k)
    _product()(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, k, n, 1.0, grad.data_ptr(), n, weight.data_ptr(), k, 0.0,
          out.data_ptr(), k)
    return out


def _bf16_input(x: torch.Tensor) -> torch.Tensor:
    """A stack's input as the contiguous bf16 tensor its first product reads, checked."""
    return _checked(x.to(torch.bfloat16).contiguous(), torch.bfloat16)


def _pointer(t: torch.Tensor | None) -> int | None:
    """A kernel argument: the tensor's data address, or NULL for an output that is not needed."""
    return None if t is None else t.data_ptr()


def _fp32_operand(t: torch.Tensor, dim: int) -> torch.Tensor:
    """A parameter as a contiguous fp32 CPU tensor for the kernel: itself when it is one (no new tensor), else a
    contiguous fp32 copy; checked either way."""
    if t.dtype != torch.float32 or not t.is_contiguous():
        t = t.detach().float().contiguous()
    return _checked(t, torch.float32, dim)


def _layer_params(params: tuple[torch.Tensor, ...], i: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer i's weight (n, k) and bias (n,) as contiguous fp32 CPU tensors, checked against the input width k."""
    weight, bias = _fp32_operand(params[2 * i], 2), _fp32_operand(params[2 * i + 1], 1)
    if weight.shape[1] != k or bias.shape[0] != weight.shape[0]:
        raise ValueError(f"bf16 layer {i}: weight {tuple(weight.shape)} and bias {tuple(bias.shape)} do not fit an "
                         f"input of width {k}")
    return weight, bias


def _forward_ops(x_bf16: torch.Tensor, params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The stack's fp32 output in torch ops around the MKL products, and per layer its bf16 input, bf16 weight and
    fp32 output (what _backward_ops reads)."""
    saved: list[torch.Tensor] = []
    n_layers = len(params) // 2
    for i in range(n_layers):
        weight, bias = _layer_params(params, i, x_bf16.shape[1])
        weight = weight.to(torch.bfloat16)
        out = bias.expand(x_bf16.shape[0], bias.shape[0]).clone()
        linear_into(out, x_bf16, weight)
        out.relu_()
        saved += [x_bf16, weight, out]
        if i + 1 < n_layers:
            x_bf16 = out.to(torch.bfloat16)
    return out, saved


def _backward_ops(grad: torch.Tensor, saved: tuple[torch.Tensor, ...], needs: tuple[bool, ...],
                  grads: list[torch.Tensor | None]) -> torch.Tensor | None:
    """_ReluStack.backward in torch ops around the MKL products: fills `grads`, returns the input gradient."""
    for i in reversed(range(len(saved) // 3)):
        x_bf16, weight, out = saved[3 * i:3 * i + 3]
        grad = torch.ops.aten.threshold_backward(grad, out, 0)
        grad_bf16 = _checked(grad.to(torch.bfloat16), torch.bfloat16)
        if needs[1 + 2 * i]:
            grads[2 * i] = _weight_grad(grad_bf16, x_bf16)
        if needs[2 + 2 * i]:
            grads[2 * i + 1] = grad.sum(0)
        if i == 0 and not needs[0]:
            return None
        grad = _input_grad(grad_bf16, weight)
    return grad


MAX_LAYERS = 64
"""Most hidden layers of a network on the fused path (MAX_LAYERS in rlcore/cpu_bf16_kernel.c: its per-layer
address arrays are this long)."""


def _addresses(tensors: list[torch.Tensor | None]) -> ctypes.Array:
    """A C array of the tensors' data addresses, NULL for None (an output that is not needed)."""
    return (ctypes.c_void_p * len(tensors))(*(_pointer(t) for t in tensors))


class _Net(NamedTuple):
    """A network as the C kernel takes it, checked (_net): dims = (input width, each layer's width), the layers'
    weights and biases as contiguous fp32 tensors (the parameters themselves where they already are), and a
    one-output head's weight (n,) and bias (1,), or None."""

    dims: tuple[int, ...]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    head: tuple[torch.Tensor, torch.Tensor] | None
    c_dims: ctypes.Array
    c_weights: ctypes.Array
    c_biases: ctypes.Array

    def saved_sizes(self, m: int) -> tuple[int, int]:
        """Elements of the forward's bf16 and fp32 blocks on m rows (the layout in rlcore/cpu_bf16_kernel.c)."""
        widths = self.dims[1:]
        weights = sum(n * k for n, k in zip(widths, self.dims[:-1], strict=True))
        return weights + m * sum(widths[:-1]), m * sum(widths)


def _scratch_size(dims: tuple[int, ...], m: int) -> int:
    """fp32 elements of the backward's scratch on m rows: two gradients as wide as the widest layer but the last,
    and the bf16 masked gradient of the widest layer in half as many fp32 slots."""
    widths = dims[1:]
    return 2 * m * max(widths[:-1], default=0) + (m * max(widths) + 1) // 2


def _c_dims(dims: tuple[int, ...]) -> ctypes.Array:
    return (ctypes.c_int * len(dims))(*dims)


_NETS: dict[tuple, _Net] = {}
"""Checked networks by the signature of their parameters (_net); at most _NETS_KEPT, then started afresh."""
_NETS_KEPT = 256


def _net(params: tuple[torch.Tensor, ...], k: int, head: bool) -> _Net:
    """The layers params[:2L] (weight, bias per layer) on inputs of width k, and with `head` the one-output head
    params[-2:] (weight (1, n), bias (1,)), checked for the C kernel.

    Checking and the address arrays cost ~25 us a call, ~10 calls per update. So a network whose operands are its
    parameters themselves (contiguous fp32 CPU tensors, no copies) is kept, keyed by every parameter's address,
    dtype, device, shape and strides: a key that matches describes the same memory laid out the same way, so the
    kept addresses are still the operands' (an update changes values in place, never addresses).
    """
    key = (k, head, *((p.data_ptr(), p.dtype, p.device, p.shape, p.stride()) for p in params))
    net = _NETS.get(key)
    if net is None:
        net = _checked_net(params, k, head)
        operands = [t for pair in zip(net.weights, net.biases, strict=True) for t in pair] + list(net.head or ())
        if [t.data_ptr() for t in operands] == [p.data_ptr() for p in params]:  # no operand is a copy
            if len(_NETS) >= _NETS_KEPT:
                _NETS.clear()
            _NETS[key] = net
    return net


def _checked_net(params: tuple[torch.Tensor, ...], k: int, head: bool) -> _Net:
    """_net without the cache."""
    n_layers = len(params) // 2 - int(head)
    if not 0 < n_layers <= MAX_LAYERS:
        raise ValueError(f"bf16 fused path: {n_layers} hidden layers, expected 1 to {MAX_LAYERS}")
    dims, weights, biases = [k], [], []
    for i in range(n_layers):
        weight, bias = _layer_params(params, i, dims[-1])
        weights.append(weight)
        biases.append(bias)
        dims.append(weight.shape[0])
    head_operands = None
    if head:
        weight, bias = _fp32_operand(params[-2], 2), _fp32_operand(params[-1], 1)
        if tuple(weight.shape) != (1, dims[-1]) or bias.shape[0] != 1:
            raise ValueError(f"bf16 Q head must have one output on the last layer's {dims[-1]} features, got weight "
                             f"{tuple(weight.shape)}, bias {tuple(bias.shape)}")
        head_operands = (weight.detach().view(-1), bias.detach())
    return _Net(tuple(dims), weights, biases, head_operands, _c_dims(tuple(dims)), _addresses(weights),
                _addresses(biases))


def _forward_fused(lib: ctypes.CDLL, x_bf16: torch.Tensor, params: tuple[torch.Tensor, ...],
                   head: bool = False) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], _Net]:
    """The network's output in one C call (rlcore/cpu_bf16_kernel.c): the last layer's (m, n) fp32 output, or with
    `head` the head's (m,); what its backward reads, (x_bf16, the bf16 block, the fp32 block); and the checked
    network. Without a head the output is a view of the fp32 block, so an in-place change to it is caught by
    autograd as a change to a saved tensor."""
    net = _net(params, x_bf16.shape[1], head)
    m = x_bf16.shape[0]
    n_bf16, n_f32 = net.saved_sizes(m)
    saved_bf16 = torch.empty(n_bf16, dtype=torch.bfloat16)
    saved_f32 = torch.empty(n_f32)
    q = torch.empty(m) if head else None
    head_weight, head_bias = net.head if head else (None, None)
    lib.bf16_net_forward(_product_address(), m, len(net.weights), net.c_dims, x_bf16.data_ptr(), net.c_weights,
                         net.c_biases, _pointer(head_weight), _pointer(head_bias),
                         saved_bf16.data_ptr(), saved_f32.data_ptr(), _pointer(q))
    out = q if head else saved_f32[n_f32 - m * net.dims[-1]:].view(m, net.dims[-1])
    return out, (x_bf16, saved_bf16, saved_f32), net


def _backward_fused(lib: ctypes.CDLL, grad: torch.Tensor, saved: tuple[torch.Tensor, ...], net: _Net,
                    head_weight: torch.Tensor | None, needs: tuple[bool, ...]
                    ) -> tuple[torch.Tensor | None, list[torch.Tensor | None]]:
    """The backward of _forward_fused in one C call, from the output's gradient (m, n), or the head's (m,) with
    `head_weight` (n,): the input gradient and the parameters' gradients in parameter order (the layers' weight and
    bias, then the head's weight (1, n) and bias (1,)), each None where `needs` (autograd's needs_input_grad: the
    input, then each parameter) does not ask for it."""
    x_bf16, saved_bf16, saved_f32 = saved
    dims = net.dims
    m, n_layers = x_bf16.shape[0], len(dims) - 1
    weight_grads = [torch.empty(dims[i + 1], dims[i]) if needs[1 + 2 * i] else None for i in range(n_layers)]
    bias_grads = [torch.empty(dims[i + 1]) if needs[2 + 2 * i] else None for i in range(n_layers)]
    head_grads = [None, None]
    if head_weight is not None:
        head_grads = [torch.empty(1, dims[-1]) if needs[-2] else None, torch.empty(1) if needs[-1] else None]
    input_grad = torch.empty(m, dims[0]) if needs[0] else None
    scratch = torch.empty(_scratch_size(dims, m))
    lib.bf16_net_backward(_product_address(), m, n_layers, net.c_dims, grad.data_ptr(), _pointer(head_weight),
                          x_bf16.data_ptr(), saved_bf16.data_ptr(), saved_f32.data_ptr(), _addresses(weight_grads),
                          _addresses(bias_grads), *(_pointer(t) for t in head_grads), _pointer(input_grad),
                          scratch.data_ptr())
    grads = [g for pair in zip(weight_grads, bias_grads, strict=True) for g in pair]
    return input_grad, grads + head_grads if head_weight is not None else grads


class _ReluStack(torch.autograd.Function):
    """ReLU(Linear) layers with MKL bf16 products; inputs (x, w0, b0, w1, b1, ...), fp32 output."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        x_bf16, lib = _bf16_input(x), _fused()
        if lib is None:
            out, saved = _forward_ops(x_bf16, params)
            ctx.net = None
        else:
            out, saved, ctx.net = _forward_fused(lib, x_bf16, params)
        ctx.save_for_backward(*saved)
        ctx.input_dtype = x.dtype
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        grad = _checked(grad.float().contiguous(), torch.float32)
        expected = tuple(saved[-1].shape) if ctx.net is None else (saved[0].shape[0], ctx.net.dims[-1])
        if tuple(grad.shape) != expected:
            raise ValueError(f"bf16 stack: gradient {tuple(grad.shape)} for an output {expected}")
        if ctx.net is None:
            grads: list[torch.Tensor | None] = [None] * (2 * (len(saved) // 3))
            input_grad = _backward_ops(grad, saved, ctx.needs_input_grad, grads)
        else:
            input_grad, grads = _backward_fused(_kernel(), grad, saved, ctx.net, None, ctx.needs_input_grad)
        return (None if input_grad is None else input_grad.to(ctx.input_dtype), *grads)


def _layer_tensors(layers: tuple[torch.nn.Linear, ...]) -> tuple[torch.Tensor, ...]:
    """Each layer's weight and bias, read from the module's parameter table (an attribute read goes through
    nn.Module.__getattr__, ~1 us each)."""
    return tuple(layer._parameters[name] for layer in layers for name in ("weight", "bias"))


def _records(x: torch.Tensor, params: tuple[torch.Tensor, ...]) -> bool:
    """True when autograd has work to record: grad mode on and the input or a parameter requires a gradient."""
    return torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params))


def relu_stack(x: torch.Tensor, layers: tuple[torch.nn.Linear, ...]) -> torch.Tensor:
    """ReLU(Linear(x)) through `layers` with MKL bf16 products (module docstring); fp32 (B, out); x fp32 or bf16.

    Callers check `usable(x)` first. Without autograd work to record (no_grad, or nothing requires a gradient)
    the layers run directly, saving nothing.
    """
    params = _layer_tensors(layers)
    if _records(x, params):
        return _ReluStack.apply(x, *params)
    x_bf16, lib = _bf16_input(x), _fused()
    return _forward_ops(x_bf16, params)[0] if lib is None else _forward_fused(lib, x_bf16, params)[0]


class _ReluStackQ(torch.autograd.Function):
    """A Q network through the fused kernel: ReLU(Linear) layers, then a one-output fp32 head; inputs (x, w0, b0,
    ..., head weight (1, n), head bias (1,)), output (m,) fp32."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        q, saved, net = _forward_fused(_kernel(), _bf16_input(x), params, head=True)
        ctx.save_for_backward(*saved, net.head[0])
        ctx.net = net
        ctx.input_dtype = x.dtype
        return q

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        *saved, head_weight = ctx.saved_tensors
        grad = _checked(grad.float().contiguous(), torch.float32, dim=1)
        if grad.shape[0] != saved[0].shape[0]:
            raise ValueError(f"bf16 Q network: gradient {tuple(grad.shape)} for {saved[0].shape[0]} rows")
        input_grad, grads = _backward_fused(_kernel(), grad, tuple(saved), ctx.net, head_weight, ctx.needs_input_grad)
        return (None if input_grad is None else input_grad.to(ctx.input_dtype), *grads)


def q_regression(x: torch.Tensor, nets: tuple[tuple[tuple[torch.nn.Linear, ...], torch.nn.Linear], ...],
                 target: torch.Tensor, weight: float) -> torch.Tensor:
    """The critic loss weight * sum over `nets` of MSE(q(x), target), its gradient accumulated into each parameter
    that requires one, without an autograd graph; returns the loss.

    Each net is (hidden layers, one-output head), as relu_q, and takes one C call: the forward, the loss, and the
    backward from MSE's gradient (q - target) * (2 / B) * weight, computed as torch's mse_loss backward computes it.
    So the gradients are bitwise those of `loss.backward()` on relu_q's outputs, without the graph, the loss's ops
    and the engine (docs/results.md "Critic step without autograd"); the loss is summed in double (within fp32
    rounding of torch's). Callers check `q_usable(x, head)` for every head first.
    """
    _checked(target, torch.float32, dim=1)
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"bf16 Q regression: target {tuple(target.shape)} for {x.shape[0]} rows")
    x_bf16, lib = _bf16_input(x), _kernel()
    m = x_bf16.shape[0]
    losses = torch.empty(len(nets))
    for j, (layers, head) in enumerate(nets):
        params = _layer_tensors((*layers, head))
        net = _net(params, x_bf16.shape[1], head=True)
        n_bf16, n_f32 = net.saved_sizes(m)
        saved_bf16, saved_f32 = torch.empty(n_bf16, dtype=torch.bfloat16), torch.empty(n_f32)
        scratch = torch.empty(_scratch_size(net.dims, m) + 2 * m)  # + q and its gradient
        grads = [torch.empty(p.shape) if p.requires_grad else None for p in params]
        lib.bf16_q_regression(_product_address(), m, len(net.weights), net.c_dims, x_bf16.data_ptr(), net.c_weights,
                              net.c_biases, net.head[0].data_ptr(), net.head[1].data_ptr(), target.data_ptr(),
                              weight, saved_bf16.data_ptr(),
                              saved_f32.data_ptr(), scratch.data_ptr(), _addresses(grads[0:-2:2]),
                              _addresses(grads[1:-2:2]), _pointer(grads[-2]), _pointer(grads[-1]),
                              losses[j].data_ptr())
        for param, grad in zip(params, grads, strict=True):
            if grad is not None:
                param.grad = grad if param.grad is None else param.grad.add_(grad)
    return losses.sum().mul_(weight)


def q_usable(x: torch.Tensor, head: torch.nn.Linear) -> bool:
    """True when a Q network on `x` with this head runs through relu_q: `usable(x)`, a one-output head and the
    fused kernel built and switched on."""
    return head.out_features == 1 and usable(x) and _fused() is not None


def relu_q(x: torch.Tensor, layers: tuple[torch.nn.Linear, ...], head: torch.nn.Linear) -> torch.Tensor:
    """head(ReLU stack(x)) squeezed to (B,) fp32 through the fused kernel: relu_stack's arithmetic, then the head in
    fp32 summed row by row. Callers check `q_usable(x, head)` first."""
    params = _layer_tensors((*layers, head))
    if _records(x, params):
        return _ReluStackQ.apply(x, *params)
    return _forward_fused(_kernel(), _bf16_input(x), params, head=True)[0]
