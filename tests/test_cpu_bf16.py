"""The MKL bf16 ReLU stack (rlcore.cpu_bf16): its arithmetic against a float64 reference that rounds to bf16 exactly
where the module says, the gradients it gives and withholds, and when rlcore.networks.hidden_pass takes it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlcore import cpu_bf16
from rlcore.networks import hidden_pass

pytestmark = pytest.mark.skipif(not cpu_bf16.available(),
                                reason="no MKL bf16 product in this torch build, or no native bf16 on this CPU")


def _layers(sizes: tuple[int, ...], seed: int = 0) -> tuple[nn.Linear, ...]:
    torch.manual_seed(seed)
    return tuple(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def _bf16(t: torch.Tensor) -> torch.Tensor:
    """t rounded to bf16, then widened to float64 (the value a bf16 product reads)."""
    return t.detach().to(torch.bfloat16).double()


def _reference(x: torch.Tensor, layers: tuple[nn.Linear, ...], grad_out: torch.Tensor):
    """Output, per-layer (weight grad, bias grad) and input grad in float64; each product's operands rounded to bf16."""
    saved, h = [], x.detach().double()
    for layer in layers:
        x_in = _bf16(h)
        h = (x_in @ _bf16(layer.weight).t() + layer.bias.detach().double()).clamp_min(0)
        saved.append((x_in, h))
    grad, grads = grad_out.double(), []
    for layer, (x_in, out) in zip(reversed(layers), reversed(saved), strict=True):
        grad = grad * (out > 0)
        grads.append((_bf16(grad).t() @ x_in, grad.sum(0)))
        grad = _bf16(grad) @ _bf16(layer.weight)
    return h, grads[::-1], grad


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b).norm() / b.norm())


def test_forward_and_backward_match_the_rounded_reference():
    layers = _layers((23, 64, 48))
    x = torch.randn(96, 23, requires_grad=True)
    grad_out = torch.randn(96, 48)
    out = cpu_bf16.relu_stack(x, layers)
    out.backward(grad_out)
    ref_out, ref_grads, ref_input_grad = _reference(x, layers, grad_out)
    assert out.dtype == torch.float32 and x.grad.dtype == torch.float32
    # fp32 accumulation against float64: ~1e-7 per sum; a mask or a bf16 rounding flipped by it stays far below 1e-4
    assert _rel(out, ref_out) < 1e-5
    for layer, (ref_w, ref_b) in zip(layers, ref_grads, strict=True):
        assert layer.weight.grad.dtype == torch.float32 and _rel(layer.weight.grad, ref_w) < 1e-4
        assert layer.bias.grad.dtype == torch.float32 and _rel(layer.bias.grad, ref_b) < 1e-5
    assert _rel(x.grad, ref_input_grad) < 1e-4


def test_bf16_input_gets_a_bf16_gradient_and_no_grad_gives_the_same_output():
    layers = _layers((16, 32, 32))
    x = torch.randn(8, 16).to(torch.bfloat16).requires_grad_(True)
    out = cpu_bf16.relu_stack(x, layers)
    out.sum().backward()
    assert x.grad.dtype == torch.bfloat16
    with torch.no_grad():
        assert torch.equal(cpu_bf16.relu_stack(x, layers), out.detach())


def test_frozen_layer_and_plain_input_get_no_gradient():
    layers = _layers((12, 32, 32))
    layers[0].requires_grad_(False)
    x = torch.randn(20, 12)
    cpu_bf16.relu_stack(x, layers).sum().backward()
    assert layers[0].weight.grad is None and layers[0].bias.grad is None
    assert layers[1].weight.grad is not None and layers[1].bias.grad is not None


def test_hidden_pass_takes_the_mkl_path_only_for_cpu_relu_batches_up_to_max_rows(monkeypatch):
    layers = _layers((10, 32, 32))
    small, large = torch.randn(cpu_bf16.MAX_ROWS, 10), torch.randn(cpu_bf16.MAX_ROWS + 1, 10)
    with torch.no_grad():
        mkl_small = hidden_pass(layers, F.relu, small, torch.bfloat16)
        assert torch.equal(mkl_small, cpu_bf16.relu_stack(small, layers))
        mkl_large = hidden_pass(layers, F.relu, large, torch.bfloat16)
        tanh = hidden_pass(layers, torch.tanh, small, torch.bfloat16)
        monkeypatch.setattr(cpu_bf16, "ENABLED", False)
        assert not torch.equal(hidden_pass(layers, F.relu, small, torch.bfloat16), mkl_small)  # oneDNN rounds
        assert torch.equal(hidden_pass(layers, F.relu, large, torch.bfloat16), mkl_large)
        assert torch.equal(hidden_pass(layers, torch.tanh, small, torch.bfloat16), tanh)


def test_operands_that_are_not_contiguous_2d_cpu_tensors_of_the_dtype_are_refused():
    good = torch.zeros(4, 6, dtype=torch.bfloat16)
    assert cpu_bf16._checked(good, torch.bfloat16) is good
    for bad in (good.t(), good.float(), good[0]):
        with pytest.raises(ValueError, match="contiguous 2-D CPU"):
            cpu_bf16._checked(bad, torch.bfloat16)


def test_linear_into_refuses_mismatched_shapes_and_dtypes_before_mkl_reads_them():
    x, weight = torch.zeros(4, 6, dtype=torch.bfloat16), torch.zeros(3, 6, dtype=torch.bfloat16)
    out = torch.ones(4, 3)
    cpu_bf16.linear_into(out, x, weight)
    assert torch.equal(out, torch.ones(4, 3))  # += a zero product
    with pytest.raises(ValueError, match="shapes do not match"):
        cpu_bf16.linear_into(torch.zeros(4, 5), x, weight)
    with pytest.raises(ValueError, match="shapes do not match"):
        cpu_bf16.linear_into(out, x, torch.zeros(3, 5, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="contiguous 2-D CPU"):
        cpu_bf16.linear_into(out.bfloat16(), x, weight)


def test_the_path_is_off_without_native_bf16_or_without_the_symbol(monkeypatch):
    x = torch.zeros(4, 6)
    assert cpu_bf16.usable(x)
    monkeypatch.setattr(cpu_bf16, "_NATIVE_BF16", False)
    assert not cpu_bf16.available() and not cpu_bf16.usable(x)
    monkeypatch.setattr(cpu_bf16, "_NATIVE_BF16", True)
    monkeypatch.setattr(cpu_bf16, "_GEMM", None)
    assert not cpu_bf16.available() and not cpu_bf16.usable(x)
