/* The elementwise work around each bf16 ReLU layer of rlcore/cpu_bf16.py, fused into one pass per layer.
 *
 * A layer's forward in torch ops is a weight cast, a bias copy, the product, a ReLU and a cast of the output for
 * the next layer: five passes over memory and five dispatches. Here it is one call: the weight cast, the product
 * (MKL's cblas_gemm_bf16bf16f32, whose address the caller passes), then bias + ReLU + the next layer's bf16 input in
 * one pass over the accumulator. The backward's ReLU mask, the gradient's bf16 rounding and the bias gradient's
 * column sums are likewise one pass, before the two products. A whole network (its layers, and a Q network's
 * one-output head) is one call from Python, forward or backward (bf16_net_forward, bf16_net_backward), and a Q
 * network's regression step is one call with its loss and gradient (bf16_q_regression): Python's cost per call
 * (argument checks, allocations, the foreign call) is paid once per network instead of once per layer.
 *
 * Arithmetic (the same as the torch-op path of rlcore/cpu_bf16.py): bf16 values are fp32 rounded to nearest even
 * (NaN becomes the quiet NaN 0x7fc0, as torch's conversion); products accumulate in fp32; bias, ReLU, mask and bias
 * gradient are fp32. Every pointer is checked by the Python caller (shapes, dtypes, contiguity) before it gets here.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t bf16;
typedef void (*gemm_bf16_t)(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha, const bf16 *a,
                            int lda, const bf16 *b, int ldb, float beta, float *c, int ldc);
enum { ROW_MAJOR = 101, COL_MAJOR = 102, NO_TRANS = 111, TRANS = 112 };
enum { LANES = 16 }; /* fp32 values in one AVX-512 register */
enum { MAX_LAYERS = 64 }; /* layers of one network (rlcore/cpu_bf16.py MAX_LAYERS refuses more) */

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
static void bf16_relu_forward(void *gemm, int m, int n, int k, const bf16 *x, const float *weight, bf16 *weight_bf16,
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
static void bf16_relu_backward(void *gemm, int m, int n, int k, const float *restrict grad, const float *restrict out,
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
static void bf16_relu_q_forward(void *gemm, int m, int n, int k, const bf16 *x, const float *weight, bf16 *weight_bf16,
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
static void bf16_relu_q_backward(void *gemm, int m, int n, int k, const float *restrict grad_q, const float *restrict out,
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

/* A whole network, in one call from Python: `layers` ReLU layers on m rows, layer i of width dims[i + 1] on an input
 * of width dims[i], optionally followed by a one-output fp32 head (head_weight (dims[layers]), head_bias (1)).
 *
 * What the forward keeps for the backward lives in two caller-allocated blocks, laid out layer by layer:
 *   saved_bf16: every layer's bf16 weight (dims[i + 1] x dims[i]), then every layer's bf16 output but the last
 *               (m x dims[i + 1]; the next layer's product input);
 *   saved_f32:  every layer's fp32 ReLU output (m x dims[i + 1]); without a head the last one is the network's
 *               output.
 * The backward's scratch (caller-allocated, fp32): two gradient buffers of m x (widest hidden layer) and the bf16
 * masked gradient of m x (widest layer) (in halves of its fp32 slots). */

static long widest(int layers, const int *dims, int from, int to) {
    long most = 0;
    for (int i = from; i < to && i < layers; i++)
        if (dims[i + 1] > most) most = dims[i + 1];
    return most;
}

void bf16_net_forward(void *gemm, int m, int layers, const int *dims, const bf16 *x, const float *const *weights,
                      const float *const *biases, const float *head_weight, const float *head_bias,
                      bf16 *saved_bf16, float *saved_f32, float *q) {
    bf16 *weight_bf16 = saved_bf16;
    bf16 *next = saved_bf16;
    for (int i = 0; i < layers; i++) next += (long)dims[i + 1] * dims[i];
    float *out = saved_f32;
    const bf16 *input = x;
    for (int i = 0; i < layers; i++) {
        int n = dims[i + 1], k = dims[i];
        int last = i + 1 == layers;
        if (last && head_weight != NULL)
            bf16_relu_q_forward(gemm, m, n, k, input, weights[i], weight_bf16, biases[i], out, head_weight, head_bias,
                                q);
        else
            bf16_relu_forward(gemm, m, n, k, input, weights[i], weight_bf16, biases[i], out, last ? NULL : next);
        input = next;
        weight_bf16 += (long)n * k;
        out += (long)m * n;
        if (!last) next += (long)m * n;
    }
}

/* Backward of bf16_net_forward from grad: (m x dims[layers]) without a head, the head's output gradient (m) with
 * one. Every gradient output may be NULL (not needed): weight_grads[i], bias_grads[i], the head's two and
 * input_grad (m x dims[0]). */
void bf16_net_backward(void *gemm, int m, int layers, const int *dims, const float *grad, const float *head_weight,
                       const bf16 *x, const bf16 *saved_bf16, const float *saved_f32, float *const *weight_grads,
                       float *const *bias_grads, float *head_weight_grad, float *head_bias_grad, float *input_grad,
                       float *scratch) {
    long hidden = widest(layers, dims, 0, layers - 1);
    float *buffers[2] = {scratch, scratch + (long)m * hidden};
    bf16 *grad_bf16 = (bf16 *)(scratch + 2L * m * hidden);
    const bf16 *weight_bf16[MAX_LAYERS], *inputs[MAX_LAYERS];
    const float *outs[MAX_LAYERS];
    const bf16 *w = saved_bf16, *next = saved_bf16;
    const float *out = saved_f32;
    for (int i = 0; i < layers; i++) next += (long)dims[i + 1] * dims[i];
    for (int i = 0; i < layers; i++) {
        weight_bf16[i] = w;
        outs[i] = out;
        inputs[i] = i == 0 ? x : next;
        if (i > 0) next += (long)m * dims[i];
        w += (long)dims[i + 1] * dims[i];
        out += (long)m * dims[i + 1];
    }
    const float *incoming = grad;
    for (int i = layers - 1; i >= 0; i--) {
        int n = dims[i + 1], k = dims[i];
        float *outgoing = i == 0 ? input_grad : buffers[i % 2];
        if (i + 1 == layers && head_weight != NULL)
            bf16_relu_q_backward(gemm, m, n, k, incoming, outs[i], inputs[i], weight_bf16[i], head_weight, grad_bf16,
                                 weight_grads[i], bias_grads[i], outgoing, head_weight_grad, head_bias_grad);
        else
            bf16_relu_backward(gemm, m, n, k, incoming, outs[i], inputs[i], weight_bf16[i], grad_bf16,
                               weight_grads[i], bias_grads[i], outgoing);
        incoming = outgoing;
    }
}

/* A Q network's regression step without autograd: the forward, loss = mean((q - target)^2) (summed in double) and
 * the backward from its gradient (q - target) * (2 / m) * weight (torch's MSE backward, in its order), into the
 * parameter gradients (any may be NULL). scratch holds bf16_net_backward's scratch, then q and its gradient. */
void bf16_q_regression(void *gemm, int m, int layers, const int *dims, const bf16 *x, const float *const *weights,
                       const float *const *biases, const float *head_weight, const float *head_bias,
                       const float *target, float weight, bf16 *saved_bf16, float *saved_f32, float *scratch,
                       float *const *weight_grads, float *const *bias_grads, float *head_weight_grad,
                       float *head_bias_grad, float *loss) {
    long hidden = widest(layers, dims, 0, layers - 1), widest_layer = widest(layers, dims, 0, layers);
    float *q = scratch + 2L * m * hidden + ((long)m * widest_layer + 1) / 2;
    float *grad_q = q + m;
    bf16_net_forward(gemm, m, layers, dims, x, weights, biases, head_weight, head_bias, saved_bf16, saved_f32, q);
    float norm = (float)(2.0 / m);
    double sum = 0.0;
    for (int i = 0; i < m; i++) {
        float diff = q[i] - target[i];
        sum += (double)diff * diff;
        grad_q[i] = diff * norm * weight;
    }
    *loss = (float)(sum / m);
    bf16_net_backward(gemm, m, layers, dims, grad_q, head_weight, x, saved_bf16, saved_f32, weight_grads, bias_grads,
                      head_weight_grad, head_bias_grad, NULL, scratch);
}
