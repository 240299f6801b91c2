/* A bf16 matrix product with fp32 accumulation and output, for CPUs with AVX512-BF16: the interface of MKL's
 * cblas_gemm_bf16bf16f32 (C = alpha op(A) op(B) + beta C), for rlcore/cpu_bf16.py where MKL's own product is slow.
 *
 * Why: MKL picks its kernels by CPU vendor; on an AMD Zen 5 its bf16 product runs generic code at fp32 speed, while
 * the CPU's vdpbf16ps does 32 bf16 multiply-adds per instruction (docs/results.md "bf16 products by CPU"). oneDNN
 * (torch's bf16 matmul) uses them, but costs ~15 us per call and rounds its output to bf16. This is a plain blocked
 * product: both operands are copied into panels of bf16 pairs along the reduction (A: MR rows per panel, each pair
 * one 32-bit word to broadcast; B: NR columns per panel, the pairs of 16 columns one register), and an MR x NR tile
 * of fp32 accumulators stays in registers over the whole reduction. Each fp32 sum is over bf16 products in pairs
 * (the instruction adds two products to the accumulator), so values match MKL's to fp32 rounding, not bitwise.
 *
 * Operands are trusted (rlcore/cpu_bf16.py checks shapes, dtypes and contiguity first). Where the compiler does not
 * target AVX512-BF16 the file still builds: bf16_gemm_vectorized() returns 0 and Python never selects it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint16_t bf16;
enum { ROW_MAJOR = 101, COL_MAJOR = 102, NO_TRANS = 111, TRANS = 112 };
enum { MR = 12, NR = 32 }; /* accumulator tile: 12 rows x 2 registers of 16 fp32 */

static inline uint32_t pair(bf16 low, bf16 high) { return (uint32_t)low | ((uint32_t)high << 16); }

static inline uint32_t word_at(const bf16 *m) {
    uint32_t word;
    memcpy(&word, m, sizeof word);
    return word;
}

/* Panels of `width` lines of op(M) (lines x k): for each block of lines, words[p][width] = (op(M)(line, 2p),
 * op(M)(line, 2p + 1)), zero past the last line and past k. A's panels are its rows (width MR); B's are the rows
 * of op(B)^T, i.e. B read with the other transpose flag (width NR). */
static void pack_panels(const bf16 *m, int transposed, long ld, int lines, int k, int width, uint32_t *out) {
    int pairs = (k + 1) / 2;
    for (int block = 0; block < lines; block += width) {
        uint32_t *panel = out + (long)block * pairs;
        int filled = lines - block < width ? lines - block : width;
        if (transposed && filled == width) {  /* the lines are M's columns: two rows of M give a panel row */
            for (int p = 0; p < pairs; p++) {
                const bf16 *even = m + (long)(2 * p) * ld + block;
                const bf16 *odd = even + ld;
                int has_odd = 2 * p + 1 < k;
                for (int i = 0; i < width; i++) panel[(long)p * width + i] = pair(even[i], has_odd ? odd[i] : 0);
            }
        } else if (!transposed) {  /* the lines are M's rows: each pair is one word (half one at odd k) */
            for (int i = 0; i < width; i++) {
                if (i >= filled) {
                    for (int p = 0; p < pairs; p++) panel[(long)p * width + i] = 0;
                    continue;
                }
                const bf16 *row = m + (long)(block + i) * ld;
                for (int p = 0; p < k / 2; p++) panel[(long)p * width + i] = word_at(row + 2 * p);
                if (k % 2) panel[(long)(pairs - 1) * width + i] = pair(row[k - 1], 0);
            }
        } else {  /* the last, partly filled block of columns */
            for (int p = 0; p < pairs; p++) {
                for (int i = 0; i < width; i++) {
                    bf16 low = 0, high = 0;
                    if (i < filled) {
                        low = m[(long)(2 * p) * ld + block + i];
                        if (2 * p + 1 < k) high = m[(long)(2 * p + 1) * ld + block + i];
                    }
                    panel[(long)p * width + i] = pair(low, high);
                }
            }
        }
    }
}

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>

int bf16_gemm_vectorized(void) { return 1; }

/* C tile (rows x columns, at most MR x NR) = alpha * A panel . B panel + beta * C */
static void tile(const uint32_t *a_panel, const uint32_t *b_panel, int pairs, int rows, int columns, float alpha,
                 float beta, float *c, long ldc) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < pairs; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b_panel + (long)p * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b_panel + (long)p * NR + 16);
        const uint32_t *a = a_panel + (long)p * MR;
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    __mmask16 mask0 = columns >= 16 ? 0xffff : (__mmask16)((1u << columns) - 1u);
    __mmask16 mask1 = columns >= 32 ? 0xffff : columns <= 16 ? 0 : (__mmask16)((1u << (columns - 16)) - 1u);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if (i >= rows) break;
        float *row = c + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {  /* beta 0 never reads C, which may hold anything */
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask0, row), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask1, row + 16), r1);
        }
        _mm512_mask_storeu_ps(row, mask0, r0);
        _mm512_mask_storeu_ps(row + 16, mask1, r1);
    }
}

#else

int bf16_gemm_vectorized(void) { return 0; }

/* the same tile in plain C (correct everywhere, slow; not selected by Python) */
static void tile(const uint32_t *a_panel, const uint32_t *b_panel, int pairs, int rows, int columns, float alpha,
                 float beta, float *c, long ldc) {
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < columns; j++) {
            float sum = 0.0f;
            for (int p = 0; p < pairs; p++) {
                uint32_t a = a_panel[(long)p * MR + i], b = b_panel[(long)p * NR + j];
                uint32_t a0 = a << 16, a1 = a & 0xffff0000u, b0 = b << 16, b1 = b & 0xffff0000u;
                float fa0, fa1, fb0, fb1;
                memcpy(&fa0, &a0, 4), memcpy(&fa1, &a1, 4), memcpy(&fb0, &b0, 4), memcpy(&fb1, &b1, 4);
                sum += fa0 * fb0 + fa1 * fb1;
            }
            float *out = c + i * ldc + j;
            *out = beta != 0.0f ? alpha * sum + beta * *out : alpha * sum;
        }
    }
}

#endif

/* row-major C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C */
static void gemm_row_major(int trans_a, int trans_b, int m, int n, int k, float alpha, const bf16 *a, long lda,
                           const bf16 *b, long ldb, float beta, float *c, long ldc, uint32_t *a_panels,
                           uint32_t *b_panels) {
    int pairs = (k + 1) / 2;
    pack_panels(a, trans_a, lda, m, k, MR, a_panels);
    pack_panels(b, !trans_b, ldb, n, k, NR, b_panels);
    for (int col = 0; col < n; col += NR) {
        const uint32_t *b_panel = b_panels + (long)col * pairs;
        int columns = n - col < NR ? n - col : NR;
        for (int row = 0; row < m; row += MR) {
            int rows = m - row < MR ? m - row : MR;
            tile(a_panels + (long)row * pairs, b_panel, pairs, rows, columns, alpha, beta, c + row * ldc + col, ldc);
        }
    }
}

/* cblas_gemm_bf16bf16f32's interface (layout, transposes, sizes, scalars, leading dimensions). A zero-sized
 * product scales C by beta (as BLAS does). Out of memory for the panels (a few hundred KB) aborts the process
 * rather than return a product that was never computed. */
void bf16_gemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha, const bf16 *a, int lda,
               const bf16 *b, int ldb, float beta, float *c, int ldc) {
    if (layout == COL_MAJOR) {  /* C^T = op(B)^T op(A)^T, row-major */
        int swap_t = trans_a;
        const bf16 *swap_p = a;
        int swap_ld = lda, swap_n = m;
        trans_a = trans_b, a = b, lda = ldb, m = n;
        trans_b = swap_t, b = swap_p, ldb = swap_ld, n = swap_n;
    }
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(long)i * ldc + j] = beta != 0.0f ? beta * c[(long)i * ldc + j] : 0.0f;
        return;
    }
    long pairs = (k + 1) / 2;
    long rows_padded = (m + MR - 1) / MR * MR, cols_padded = (n + NR - 1) / NR * NR;
    uint32_t *panels = malloc(sizeof(uint32_t) * pairs * (rows_padded + cols_padded));
    if (panels == NULL) {
        fputs("bf16_gemm: out of memory for the operand panels\n", stderr);
        abort();
    }
    gemm_row_major(trans_a == TRANS, trans_b == TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, panels,
                   panels + pairs * rows_padded);
    free(panels);
}
