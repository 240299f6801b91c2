"""The MKL bf16 ReLU stack (rlcore.cpu_bf16): its arithmetic against a float64 reference that rounds to bf16 exactly
where the module says, with the elementwise work in the fused C kernel and in torch ops; the gradients it gives and
withholds; when rlcore.networks.hidden_pass takes it; the kernel's build and its fallback."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlcore import cpu_bf16
from rlcore.networks import hidden_pass

pytestmark = pytest.mark.skipif(not cpu_bf16.supported(),
                                reason="no bf16 product with fp32 output here (MKL's or ours), or no native bf16")

PRODUCTS_HERE = [name for name, gemm in (("mkl", cpu_bf16._GEMM), ("own", cpu_bf16._own_gemm())) if gemm is not None]


@pytest.fixture(autouse=True, params=PRODUCTS_HERE)
def product(request, monkeypatch):
    """Each test runs once per product here (MKL's, ours), whichever one this CPU would choose (the choice has its
    own tests below)."""
    monkeypatch.setattr(cpu_bf16, "PRODUCT", request.param)
    return request.param


@pytest.fixture(params=["fused", "torch-ops"])
def elementwise(request, monkeypatch):
    """Each test with this fixture runs twice: the C kernel's fused passes, then torch ops around the products."""
    if request.param == "fused" and cpu_bf16._kernel() is None:
        pytest.skip("the fused C kernel is not built here (no C compiler)")
    monkeypatch.setattr(cpu_bf16, "FUSED", request.param == "fused")
    return request.param


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


def test_forward_and_backward_match_the_rounded_reference(elementwise):
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


def test_bf16_input_gets_a_bf16_gradient_and_no_grad_gives_the_same_output(elementwise):
    layers = _layers((16, 32, 32))
    x = torch.randn(8, 16).to(torch.bfloat16).requires_grad_(True)
    out = cpu_bf16.relu_stack(x, layers)
    out.sum().backward()
    assert x.grad.dtype == torch.bfloat16
    with torch.no_grad():
        assert torch.equal(cpu_bf16.relu_stack(x, layers), out.detach())


def test_frozen_layer_and_plain_input_get_no_gradient(elementwise):
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


def test_the_path_is_off_without_native_bf16_or_without_a_product(monkeypatch):
    x = torch.zeros(4, 6)
    assert cpu_bf16.usable(x)
    monkeypatch.setattr(cpu_bf16, "_NATIVE_BF16", False)
    assert not cpu_bf16.available() and not cpu_bf16.usable(x)
    monkeypatch.setattr(cpu_bf16, "_NATIVE_BF16", True)
    monkeypatch.setattr(cpu_bf16, "_GEMM", None)
    monkeypatch.setattr(cpu_bf16, "_own_gemm", lambda: None)
    assert not cpu_bf16.supported() and not cpu_bf16.available() and not cpu_bf16.usable(x)
    monkeypatch.setattr(cpu_bf16, "PRODUCT", "onednn")
    assert not cpu_bf16.available()


@pytest.mark.parametrize(("seconds", "chosen"), [
    ({"mkl": 0.6, "own": 0.8, "onednn": 1.0}, "mkl"),  # an Intel CPU: MKL's kernels
    ({"mkl": 1.0, "own": 0.7, "onednn": 1.0}, "mkl"),  # ours faster, but not by SLOWDOWN_LIMIT: MKL kept
    ({"mkl": 4.1, "own": 1.05, "onednn": 1.0}, "own"),  # an AMD Zen 5: MKL's generic code
    ({"mkl": 4.1, "own": 1.6, "onednn": 1.0}, "onednn"),  # neither within SLOWDOWN_LIMIT of oneDNN
    ({"mkl": 1.4, "onednn": 1.0}, "mkl"),  # no C compiler: no product of ours
    ({"mkl": 1.6, "onednn": 1.0}, "onednn"),
    ({"own": 1.2, "onednn": 1.0}, "own"),  # no MKL in this torch build
])
def test_the_product_is_chosen_by_measurement_once(monkeypatch, seconds, chosen):
    calls = []
    monkeypatch.setattr(cpu_bf16, "product_seconds", lambda: calls.append(1) or seconds)
    monkeypatch.setattr(cpu_bf16, "PRODUCT", None)
    monkeypatch.delenv(cpu_bf16.GEMM_ENV, raising=False)
    assert cpu_bf16.chosen_product() == chosen
    assert cpu_bf16.available() is (chosen != "onednn") and cpu_bf16.usable(torch.zeros(4, 6)) is (chosen != "onednn")
    assert cpu_bf16.chosen_product() == chosen and len(calls) == 1


@pytest.mark.parametrize("choice", [*PRODUCTS_HERE, "onednn", "ONEDNN"])
def test_the_environment_fixes_the_choice_without_measuring(monkeypatch, choice):
    monkeypatch.setattr(cpu_bf16, "product_seconds", lambda: pytest.fail("measured although the choice was fixed"))
    monkeypatch.setattr(cpu_bf16, "PRODUCT", None)
    monkeypatch.setenv(cpu_bf16.GEMM_ENV, choice)
    assert cpu_bf16.chosen_product() == choice.lower()
    assert cpu_bf16.available() is (choice.lower() != "onednn")


@pytest.mark.parametrize("choice", ["fastest", "own"])
def test_an_unknown_or_missing_product_warns_and_measures(monkeypatch, choice):
    if choice == "own":
        monkeypatch.setattr(cpu_bf16, "_own_gemm", lambda: None)  # as without a C compiler
        if cpu_bf16._GEMM is None:
            pytest.skip("no MKL product here either")
    monkeypatch.setattr(cpu_bf16, "product_seconds", lambda: {"mkl": 1.0, "onednn": 1.0})
    monkeypatch.setattr(cpu_bf16, "PRODUCT", None)
    monkeypatch.setenv(cpu_bf16.GEMM_ENV, choice)
    with pytest.warns(UserWarning, match="measuring"):
        assert cpu_bf16.chosen_product() == "mkl"


def test_the_measurement_times_each_product_and_leaves_the_global_generator_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    seconds = cpu_bf16.product_seconds(rows=16, width=32, repeats=2)
    assert sorted(seconds) == sorted([*PRODUCTS_HERE, "onednn"]) and all(0 < t < 1 for t in seconds.values())
    assert torch.equal(torch.rand(3), expected)


def test_the_two_elementwise_paths_agree_to_fp32_rounding(monkeypatch):
    if cpu_bf16._kernel() is None:
        pytest.skip("the fused C kernel is not built here (no C compiler)")
    layers = _layers((30, 64, 40))
    x = torch.randn(50, 30, requires_grad=True)
    grad_out = torch.randn(50, 40)
    results = []
    for fused in (True, False):
        monkeypatch.setattr(cpu_bf16, "FUSED", fused)
        x.grad = None
        for layer in layers:
            layer.zero_grad(set_to_none=True)
        out = cpu_bf16.relu_stack(x, layers)
        out.backward(grad_out)
        results.append([out.detach(), x.grad] + [p.grad for layer in layers for p in layer.parameters()])
    for fused, ops in zip(*results, strict=True):
        # the same products; only the bias's addition and the bias gradient's summation order differ
        torch.testing.assert_close(fused, ops, rtol=1e-5, atol=1e-5)


def test_a_layer_that_does_not_fit_its_input_or_a_wrong_gradient_is_refused(elementwise):
    layers = _layers((8, 16, 4))
    with pytest.raises(ValueError, match="do not fit an input of width 9"):
        cpu_bf16.relu_stack(torch.randn(5, 9), layers)
    layers[1].bias = nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="do not fit"):
        cpu_bf16.relu_stack(torch.randn(5, 8), layers)
    # autograd checks a gradient's shape itself; the Function checks again, as its pointers go to MKL and C
    out = cpu_bf16.relu_stack(torch.randn(5, 8), _layers((8, 4)))
    with pytest.raises(ValueError, match="gradient"):
        cpu_bf16._ReluStack.backward(out.grad_fn, torch.zeros(5, 3))


def test_the_kernel_is_built_once_into_the_cache_and_a_failed_build_falls_back_to_torch_ops(monkeypatch, tmp_path,
                                                                                            product):
    if product != "mkl":
        pytest.skip("without the kernel only MKL's product is left")
    monkeypatch.setenv("BOOSTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_bf16, "_KERNEL", False)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    layers = _layers((6, 8))
    x = torch.randn(4, 6)
    with pytest.warns(UserWarning, match="fused C kernel is unavailable"):
        assert cpu_bf16._kernel() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tried once: no second warning, and the stack still runs (torch ops)
        assert cpu_bf16._kernel() is None and cpu_bf16.relu_stack(x, layers).shape == (4, 8)
    assert not any((tmp_path / "cache").glob("*.so"))  # nothing half-built is left to load
    monkeypatch.setattr(cpu_bf16, "_KERNEL", False)
    monkeypatch.setenv("BOOSTER_BF16_KERNEL", "off")
    monkeypatch.delenv("CC")
    assert cpu_bf16._kernel() is None
    monkeypatch.delenv("BOOSTER_BF16_KERNEL")
    monkeypatch.setattr(cpu_bf16, "_KERNEL", False)
    if cpu_bf16._kernel() is None:
        pytest.skip("no C compiler here: the build itself is not exercised")
    assert len(list((tmp_path / "cache").glob("cpu_bf16_*.so"))) == 1


@pytest.fixture
def fused_kernel():
    if cpu_bf16._kernel() is None:
        pytest.skip("the fused C kernel is not built here (no C compiler)")


def test_q_network_with_its_head_fused_matches_the_rounded_reference(fused_kernel):
    layers = _layers((23, 64, 48))
    head = nn.Linear(48, 1)
    x = torch.randn(96, 23, requires_grad=True)
    grad_q = torch.randn(96)
    q = cpu_bf16.relu_q(x, layers, head)
    q.backward(grad_q)
    head_w = head.weight.detach().double()
    ref_latent, ref_grads, ref_input_grad = _reference(x, layers, grad_q.double()[:, None] * head_w)
    ref_q = (ref_latent @ head_w.t()).squeeze(-1) + float(head.bias.detach())
    assert q.shape == (96,) and q.dtype == torch.float32
    assert _rel(q, ref_q) < 1e-5  # the head is fp32 on the fp32 latent: nothing rounded to bf16 there
    assert _rel(head.weight.grad, grad_q.double()[None, :] @ ref_latent) < 1e-5
    assert head.bias.grad.shape == (1,) and _rel(head.bias.grad, grad_q.double().sum().reshape(1)) < 1e-5
    for layer, (ref_w, ref_b) in zip(layers, ref_grads, strict=True):
        assert _rel(layer.weight.grad, ref_w) < 1e-4 and _rel(layer.bias.grad, ref_b) < 1e-5
    assert _rel(x.grad, ref_input_grad) < 1e-4


def test_q_network_frozen_gives_only_the_input_gradient_and_no_grad_the_same_q(fused_kernel):
    layers, head = _layers((12, 32, 32)), nn.Linear(32, 1)
    for module in (*layers, head):
        module.requires_grad_(False)
    x = torch.randn(20, 12, requires_grad=True)
    q = cpu_bf16.relu_q(x, layers, head)
    q.sum().backward()
    assert x.grad is not None and all(p.grad is None for m in (*layers, head) for p in m.parameters())
    with torch.no_grad():
        assert torch.equal(cpu_bf16.relu_q(x, layers, head), q.detach())


def test_twin_critic_takes_the_fused_q_path_only_where_it_applies(fused_kernel, monkeypatch):
    from rlcore.config import NetConfig
    from rlcore.networks import TwinCritic

    critic = TwinCritic(9, 3, NetConfig(net_arch=(32, 32)))
    obs, act = torch.randn(16, 9), torch.rand(16, 3) * 2 - 1
    x = torch.cat([obs, act], dim=-1)
    assert cpu_bf16.q_usable(x, critic.qf0[-1]) and not cpu_bf16.q_usable(x, nn.Linear(32, 2))
    with torch.no_grad():
        q0, q1 = critic(obs, act, torch.bfloat16)
        assert torch.equal(q0, cpu_bf16.relu_q(x, critic._hidden[0], critic.qf0[-1]))
        assert torch.equal(q1, cpu_bf16.relu_q(x, critic._hidden[1], critic.qf1[-1]))
        monkeypatch.setattr(cpu_bf16, "FUSED", False)
        assert not cpu_bf16.q_usable(x, critic.qf0[-1])
        ops0, ops1 = critic(obs, act, torch.bfloat16)  # the stack, then the head as a torch product
        torch.testing.assert_close(ops0, q0, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ops1, q1, rtol=1e-5, atol=1e-5)


def test_a_q_head_with_more_than_one_output_is_refused(fused_kernel):
    with pytest.raises(ValueError, match="one output"):
        cpu_bf16.relu_q(torch.randn(4, 6), _layers((6, 8)), nn.Linear(8, 2))


def _critic_grads(critic: nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in critic.parameters()]


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_critic_regression_without_autograd_equals_autograd_bitwise(fused_kernel, weight):
    from rlcore.config import NetConfig
    from rlcore.networks import TwinCritic

    torch.manual_seed(3)
    critic = TwinCritic(9, 3, NetConfig(net_arch=(32, 24)))
    obs, act, target = torch.randn(40, 9), torch.rand(40, 3) * 2 - 1, torch.randn(40) * 5
    critic.qf1[0].weight.requires_grad_(False)  # a frozen parameter gets no gradient on either path
    q1, q2 = critic(obs, act, torch.bfloat16)
    loss = weight * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
    loss.backward()
    autograd_grads = _critic_grads(critic)
    critic.zero_grad(set_to_none=True)
    direct = critic.regression_backward(obs, act, target, torch.bfloat16, weight)
    assert not direct.requires_grad  # the loss is summed in double: within fp32 rounding of torch's sum
    torch.testing.assert_close(direct, loss.detach(), rtol=1e-6, atol=0)
    direct_grads = _critic_grads(critic)
    assert direct_grads[6] is None and autograd_grads[6] is None  # qf1[0].weight (after qf0's six), frozen
    for got, want in zip(direct_grads, autograd_grads, strict=True):
        assert (got is None) == (want is None) and (got is None or torch.equal(got, want))
    critic.regression_backward(obs, act, target, torch.bfloat16, weight)  # accumulates, as a second backward would
    for got, want in zip(_critic_grads(critic), autograd_grads, strict=True):
        assert got is None or torch.equal(got, 2 * want)


@pytest.mark.parametrize("switch", ["FUSED", "DIRECT_REGRESSION"])
def test_critic_regression_falls_back_to_autograd_off_the_fused_path(fused_kernel, monkeypatch, switch):
    from rlcore.config import NetConfig
    from rlcore.networks import TwinCritic

    critic = TwinCritic(9, 3, NetConfig(net_arch=(32, 32)))
    obs, act, target = torch.randn(16, 9), torch.rand(16, 3) * 2 - 1, torch.randn(16)
    direct = critic.regression_backward(obs, act, target, torch.bfloat16, 0.5)
    direct_grads = _critic_grads(critic)
    critic.zero_grad(set_to_none=True)
    monkeypatch.setattr(cpu_bf16, switch, False)
    calls = []
    monkeypatch.setattr(cpu_bf16, "q_regression", lambda *args: calls.append(args))
    torch.testing.assert_close(critic.regression_backward(obs, act, target, torch.bfloat16, 0.5), direct,
                               rtol=1e-5, atol=1e-5)
    assert not calls
    for got, want in zip(_critic_grads(critic), direct_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_critic_regression_refuses_a_target_that_does_not_fit(fused_kernel):
    layers, head = _layers((6, 8)), nn.Linear(8, 1)
    with pytest.raises(ValueError, match="target"):
        cpu_bf16.q_regression(torch.randn(4, 6), ((layers, head),), torch.randn(5), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        cpu_bf16.q_regression(torch.randn(4, 6), ((layers, head),), torch.randn(4, 1), 1.0)


def test_a_kept_network_follows_its_parameters_and_a_copied_operand_is_never_kept(fused_kernel):
    layers, head = _layers((6, 8, 8)), nn.Linear(8, 1)
    x = torch.randn(4, 6)
    with torch.no_grad():
        before = cpu_bf16.relu_q(x, layers, head)
        layers[0].weight.mul_(2)  # in place, as Adam and Polyak do: the same memory, new values
        doubled = cpu_bf16.relu_q(x, layers, head)
        assert not torch.equal(doubled, before)
        layers[0].weight.div_(2)
        assert torch.equal(cpu_bf16.relu_q(x, layers, head), before)
        # a transposed weight is not contiguous: the kernel reads a contiguous copy, made afresh on every call
        layers[1].weight = nn.Parameter(layers[1].weight.detach().t().contiguous().t())
        first = cpu_bf16.relu_q(x, layers, head)
        layers[1].weight.mul_(3)
        assert not torch.equal(cpu_bf16.relu_q(x, layers, head), first)
    with pytest.raises(ValueError, match="one output on the last layer's 8 features"):
        cpu_bf16.relu_q(x, layers, nn.Linear(7, 1))
