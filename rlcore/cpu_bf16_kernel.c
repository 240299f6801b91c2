/* The elementwise work around each bf16 ReLU layer of rlcore/cpu_bf16.py, fused into one pass per layer.
 *
 * A layer's forward in torch ops is a weight cast, a bias copy, the product, a ReLU and a cast of the output for
 * the next layer: five passes over memory and five dispatches. Here it is one call: the weight cast, the product
 * (MKL's cblas_gemm_bf16bf16f32, whose address the caller passes), then bias + ReLU + the next layer's bf16 input in
 * one pass over the accumulator. The backward's ReLU mask, the gradient's bf16 rounding and the bias gradient's
 * column sums are likewise one pass, before the two products.
 *
 * Arithmetic (the same as the torch-op path of rlcore/cpu_bf16.py): bf16 values are fp32 rounded to nearest even
 * (NaN becomes the quiet NaN 0x7fc0, as torch's conversion); products accumulate in fp32; bias, ReLU, mask and bias
 * gradient are fp32. Every pointer is checked by the Python caller (shapes, dtypes, contiguity) before it gets here.
 */
#include <stdint.h>
#include <string.h>

typedef uint16_t bf16;
typedef void (*gemm_bf16_t)(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha, const bf16 *a,
                            int lda, const bf16 *b, int ldb, float beta, float *c, int ldc);
enum { ROW_MAJOR = 101, COL_MAJOR = 102, NO_TRANS = 111, TRANS = 112 };
enum { LANES = 16 }; /* fp32 values in one AVX-512 register */

static inline bf16 round_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (bf16)0x7fc0u;
    return (bf16)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

static void cast_bf16(const float *restrict src, bf16 *restrict dst, long count) {
    for (long i = 0; i < count; i++) dst[i] = round_bf16(src[i]);
}

/* weight_bf16 <- bf16(weight (n, k)); out (m, n) = x (m, k) @ weight_bf16^T, accumulated and written in fp32 */
static void cast_and_product(void *gemm, int m, int n, int k, const bf16 *x, const float *weight, bf16 *weight_bf16,
                             float *out) {
    cast_bf16(weight, weight_bf16, (long)n * k);
    ((gemm_bf16_t)gemm)(ROW_MAJOR, NO_TRANS, TRANS, m, n, k, 1.0f, x, k, weight_bf16, k, 0.0f, out, n);
}

/* A layer's two gradient products from its masked, rounded gradient grad_bf16 (m, n): weight_grad (n, k) = g^T x,
 * written as the column-major product x^T g (the faster form in MKL), and input_grad (m, k) = g @ weight_bf16;
 * either may be NULL (not needed). */
static void gradient_products(void *gemm, int m, int n, int k, const bf16 *x, const bf16 *weight_bf16,
                              const bf16 *grad_bf16, float *weight_grad, float *input_grad) {
    if (weight_grad != NULL)
        ((gemm_bf16_t)gemm)(COL_MAJOR, NO_TRANS, TRANS, k, n, m, 1.0f, x, k, grad_bf16, n, 0.0f, weight_grad, k);
    if (input_grad != NULL)
        ((gemm_bf16_t)gemm)(ROW_MAJOR, NO_TRANS, NO_TRANS, m, k, n, 1.0f, grad_bf16, n, weight_bf16, k, 0.0f,
                            input_grad, k);
}

/* out (m, n) = ReLU(x (m, k) @ bf16(weight (n, k))^T + bias); weight_bf16 receives bf16(weight) (kept for the
 * backward); next (m, n), when not NULL, receives bf16(out), the next layer's product input. */
void bf16_relu_forward(void *gemm, int m, int n, int k, const bf16 *x, const float *weight, bf16 *weight_bf16,
                       const float *bias, float *restrict out, bf16 *restrict next) {
    cast_and_product(gemm, m, n, k, x, weight, weight_bf16, out);
    for (int i = 0; i < m; i++) {
        float *restrict row = out + (long)i * n;
        for (int j = 0; j < n; j++) {
            float value = row[j] + bias[j];
            row[j] = value < 0.0f ? 0.0f : value; /* NaN passes through, as torch's ReLU */
        }
        if (next != NULL) {
            bf16 *restrict next_row = next + (long)i * n;
            for (int j = 0; j < n; j++) next_row[j] = round_bf16(row[j]);
        }
    }
}

/* Backward of one layer from grad (m, n), the gradient of its ReLU output out (m, n): g = grad where out > 0;
 * grad_bf16 (m, n) receives bf16(g); bias_grad (n) = column sums of g; weight_grad (n, k) = bf16(g)^T @ x;
 * input_grad (m, k) = bf16(g) @ weight_bf16. Any of bias_grad, weight_grad, input_grad may be NULL (not needed). */
void bf16_relu_backward(void *gemm, int m, int n, int k, const float *restrict grad, const float *restrict out,
                        const bf16 *x, const bf16 *weight_bf16, bf16 *restrict grad_bf16, float *weight_grad,
                        float *restrict bias_grad, float *input_grad) {
    if (bias_grad != NULL) memset(bias_grad, 0, sizeof(float) * (size_t)n);
    for (int i = 0; i < m; i++) {
        const float *restrict grad_row = grad + (long)i * n;
        const float *restrict out_row = out + (long)i * n;
        bf16 *restrict masked_row = grad_bf16 + (long)i * n;
        if (bias_grad != NULL) {
            for (int j = 0; j < n; j++) {
                float g = out_row[j] > 0.0f ? grad_row[j] : 0.0f;
                bias_grad[j] += g;
                masked_row[j] = round_bf16(g);
            }
        } else {
            for (int j = 0; j < n; j++) masked_row[j] = round_bf16(out_row[j] > 0.0f ? grad_row[j] : 0.0f);
        }
    }
    gradient_products(gemm, m, n, k, x, weight_bf16, grad_bf16, weight_grad, input_grad);
}

/* The last ReLU layer and a one-output fp32 head in one pass (a Q network's end): bf16_relu_forward's out (m, n),
 * then q (m) = out @ head_weight (n) + head_bias[0], summed in fp32 row by row while each row of out is in cache. */
void bf16_relu_q_forward(void *gemm, int m, int n, int k, const bf16 *x, const float *weight, bf16 *weight_bf16,
                         const float *bias, float *restrict out, const float *restrict head_weight,
                         const float *restrict head_bias, float *restrict q) {
    cast_and_product(gemm, m, n, k, x, weight, weight_bf16, out);
    for (int i = 0; i < m; i++) {
        float *restrict row = out + (long)i * n;
        /* LANES partial sums in a fixed order: a vectorisable, deterministic dot product (one running sum would
         * leave the compiler a serial chain of additions, as it may not reorder them) */
        float partial[LANES] = {0.0f};
        int j = 0;
        for (; j + LANES <= n; j += LANES)
            for (int lane = 0; lane < LANES; lane++) {
                float value = row[j + lane] + bias[j + lane];
                value = value < 0.0f ? 0.0f : value;
                row[j + lane] = value;
                partial[lane] += value * head_weight[j + lane];
            }
        for (; j < n; j++) {
            float value = row[j] + bias[j];
            value = value < 0.0f ? 0.0f : value;
            row[j] = value;
            partial[0] += value * head_weight[j];
        }
        float sum = 0.0f;
        for (int lane = 0; lane < LANES; lane++) sum += partial[lane];
        q[i] = sum + head_bias[0];
    }
}

/* Backward of bf16_relu_q_forward from grad_q (m): the head's gradients head_weight_grad (n) = out^T grad_q and
 * head_bias_grad (1) = sum grad_q (both may be NULL), and the layer's as bf16_relu_backward with the incoming
 * gradient grad_q[i] * head_weight[j], which is never stored. */
void bf16_relu_q_backward(void *gemm, int m, int n, int k, const float *restrict grad_q, const float *restrict out,
                          const bf16 *x, const bf16 *weight_bf16, const float *restrict head_weight,
                          bf16 *restrict grad_bf16, float *weight_grad, float *restrict bias_grad, float *input_grad,
                          float *restrict head_weight_grad, float *restrict head_bias_grad) {
    if (bias_grad != NULL) memset(bias_grad, 0, sizeof(float) * (size_t)n);
    if (head_weight_grad != NULL) memset(head_weight_grad, 0, sizeof(float) * (size_t)n);
    float grad_sum = 0.0f;
    for (int i = 0; i < m; i++) {
        const float *restrict out_row = out + (long)i * n;
        bf16 *restrict masked_row = grad_bf16 + (long)i * n;
        float gq = grad_q[i];
        grad_sum += gq;
        if (head_weight_grad != NULL)
            for (int j = 0; j < n; j++) head_weight_grad[j] += gq * out_row[j];
        for (int j = 0; j < n; j++) {
            float g = out_row[j] > 0.0f ? gq * head_weight[j] : 0.0f;
            if (bias_grad != NULL) bias_grad[j] += g;
            masked_row[j] = round_bf16(g);
        }
    }
    if (head_bias_grad != NULL) *head_bias_grad = grad_sum;
    gradient_products(gemm, m, n, k, x, weight_bf16, grad_bf16, weight_grad, input_grad);
}
