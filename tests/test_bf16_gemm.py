"""Our bf16 product (rlcore/bf16_gemm.c, MKL's cblas_gemm_bf16bf16f32 interface) against a float64 product of the
same bf16 values: every layout and transpose, sizes that fill no tile, odd reductions, alpha and beta, and the
plain-C build that CPUs without AVX512-BF16 compile."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest
import torch

from rlcore import cpu_bf16

ROW, COL, NO, TR = 101, 102, 111, 112

own = cpu_bf16._own_gemm()
needs_own = pytest.mark.skipif(own is None, reason="no C compiler, or no AVX512-BF16 on this CPU")


def _operand(rows: int, cols: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16)


def _call(gemm, layout: int, trans_a: int, trans_b: int, m: int, n: int, k: int, alpha: float, beta: float,
          c_init: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gemm's C and the float64 reference for C = alpha op(A) op(B) + beta C, A and B stored as the flags say."""
    a_shape = (m, k) if trans_a == NO else (k, m)  # as stored, row-major view
    b_shape = (k, n) if trans_b == NO else (n, k)
    if layout == COL:  # a column-major (r, c) matrix is the row-major (c, r) one
        a_shape, b_shape = a_shape[::-1], b_shape[::-1]
    a, b = _operand(*a_shape, seed=1), _operand(*b_shape, seed=2)
    op_a = a.double() if (trans_a == NO) == (layout == ROW) else a.double().t()
    op_b = b.double() if (trans_b == NO) == (layout == ROW) else b.double().t()
    c_ref = c_init.double() if layout == ROW else c_init.double().t()
    reference = alpha * op_a @ op_b + (beta * c_ref if beta != 0 else 0)
    lda, ldb, ldc = a_shape[1], b_shape[1], c_init.shape[1]
    c = c_init.clone()
    gemm(layout, trans_a, trans_b, m, n, k, alpha, a.data_ptr(), lda, b.data_ptr(), ldb, beta, c.data_ptr(), ldc)
    return (c if layout == ROW else c.t()), reference


CASES = [(m, n, k) for m, n, k in [(256, 256, 256), (256, 128, 101), (7, 13, 5), (1, 1, 1), (300, 70, 33),
                                   (13, 40, 256), (12, 32, 2), (25, 33, 3)]]


@needs_own
@pytest.mark.parametrize(("m", "n", "k"), CASES)
@pytest.mark.parametrize("layout", [ROW, COL])
@pytest.mark.parametrize(("trans_a", "trans_b"), [(NO, NO), (NO, TR), (TR, NO), (TR, TR)])
def test_every_layout_and_transpose_matches_the_float64_product(m, n, k, layout, trans_a, trans_b):
    c_shape = (m, n) if layout == ROW else (n, m)
    c, reference = _call(own, layout, trans_a, trans_b, m, n, k, 1.0, 0.0, torch.full(c_shape, float("nan")))
    # fp32 sums of exact bf16 products: within fp32 rounding of the largest partial sums
    torch.testing.assert_close(c.double(), reference, rtol=0, atol=1e-5 * (1 + reference.abs().max().item()))


@needs_own
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, -2.0), (2.0, 0.0)])
def test_alpha_scales_the_product_and_beta_the_old_c(alpha, beta):
    m, n, k = 30, 50, 17
    c, reference = _call(own, ROW, NO, TR, m, n, k, alpha, beta, _operand(m, n, seed=3).float())
    torch.testing.assert_close(c.double(), reference, rtol=0, atol=1e-5 * (1 + reference.abs().max().item()))


@needs_own
def test_beta_zero_never_reads_c_and_an_empty_reduction_scales_c():
    c, _ = _call(own, ROW, NO, NO, 5, 6, 4, 1.0, 0.0, torch.full((5, 6), float("nan")))
    assert torch.isfinite(c).all()  # the NaNs already in C are overwritten, not multiplied by 0
    c = torch.full((3, 4), 2.0)
    own(ROW, NO, NO, 3, 4, 0, 1.0, None, 1, None, 4, 0.5, c.data_ptr(), 4)
    assert torch.equal(c, torch.ones(3, 4))
    own(ROW, NO, NO, 0, 4, 3, 1.0, None, 3, None, 4, 0.5, c.data_ptr(), 4)  # no rows: nothing written
    assert torch.equal(c, torch.ones(3, 4))


def test_the_plain_c_build_agrees_and_says_it_is_not_vectorised(tmp_path):
    """What a CPU without AVX512-BF16 compiles: slow but correct, and reported so Python never chooses it."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    target = tmp_path / "plain.so"
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-std=c99", str(cpu_bf16.GEMM_SOURCE), "-o", str(target)],
                   check=True, capture_output=True)
    lib = ctypes.CDLL(str(target))
    assert lib.bf16_gemm_vectorized() == 0
    gemm = cpu_bf16._declare_gemm(lib.bf16_gemm)
    for layout, trans_a, trans_b in [(ROW, NO, TR), (COL, NO, TR), (ROW, NO, NO)]:
        c, reference = _call(gemm, layout, trans_a, trans_b, 37, 45, 29, 1.0, 1.0, torch.ones(37, 45) if
                             layout == ROW else torch.ones(45, 37))
        torch.testing.assert_close(c.double(), reference, rtol=0, atol=1e-5 * (1 + reference.abs().max().item()))
