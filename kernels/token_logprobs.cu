#include <cfloat>
#include <climits>
#include <cmath>

#include "token_logprobs.h"
#include "vector_io.cuh"  // defines: Element, Vector, aligned16

namespace corl::kernels {
namespace {

// One block per row. 256 threads keep eight blocks resident per multiprocessor and, with four
// 16-byte loads in flight per thread, 16 KiB of each row in flight per block.
constexpr int kThreads = 256;
constexpr int kUnroll = 4;
constexpr int kWarps = kThreads / 32;

// A running log-sum-exp: sum holds sum exp(x - max) over the elements seen so far.
struct LogSumExp {
  float max;
  float sum;
};

__device__ __forceinline__ LogSumExp combine(LogSumExp a, LogSumExp b) {
  const float m = fmaxf(a.max, b.max);
  // Both empty (or all -inf): exp(-inf - -inf) would be NaN.
  if (m == -INFINITY) return {m, 0.0f};
  return {m, a.sum * __expf(a.max - m) + b.sum * __expf(b.max - m)};
}

// Adds n values at once: one rescale of the running sum per group, not per element.
template <int n>
__device__ __forceinline__ void accumulate(LogSumExp& s, const float (&x)[n]) {
  float m = x[0];
#pragma unroll
  for (int i = 1; i < n; ++i) m = fmaxf(m, x[i]);
  if (m > s.max) {
    s.sum *= __expf(s.max - m);
    s.max = m;
  }
  if (s.max == -INFINITY) return;
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < n; ++i) sum += __expf(x[i] - s.max);
  s.sum += sum;
}

__device__ __forceinline__ LogSumExp block_reduce(LogSumExp s) {
  __shared__ float warp_max[kWarps];
  __shared__ float warp_sum[kWarps];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const LogSumExp other{__shfl_xor_sync(0xffffffffu, s.max, offset),
                          __shfl_xor_sync(0xffffffffu, s.sum, offset)};
    s = combine(s, other);
  }
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (lane == 0) {
    warp_max[warp] = s.max;
    warp_sum[warp] = s.sum;
  }
  __syncthreads();
  if (warp == 0) {
    s = lane < kWarps ? LogSumExp{warp_max[lane], warp_sum[lane]} : LogSumExp{-INFINITY, 0.0f};
#pragma unroll
    for (int offset = kWarps / 2; offset > 0; offset /= 2) {
      const LogSumExp other{__shfl_xor_sync(0xffffffffu, s.max, offset),
                            __shfl_xor_sync(0xffffffffu, s.sum, offset)};
      s = combine(s, other);
    }
  }
  return s;  // valid in thread 0
}

template <typename T, bool kVectorised>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ logits, int64_t vocab, int64_t row_stride,
                   const int64_t* __restrict__ targets, float* __restrict__ logp,
                   float* __restrict__ lse, unsigned long long* first_bad_row) {
  const int64_t row = blockIdx.x;
  const T* x = logits + row * row_stride;
  LogSumExp s{-INFINITY, 0.0f};
  int64_t scalar_start = 0;
  if constexpr (kVectorised) {
    using V = Vector<T>;
    const int64_t vectors = vocab / V::kWidth;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    int64_t i = threadIdx.x;
    // Several independent loads issued before the first is used hide the memory latency.
    for (; i + (kUnroll - 1) * kThreads < vectors; i += kUnroll * kThreads) {
      uint4 bits[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) bits[u] = __ldg(xv + i + u * kThreads);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float values[V::kWidth];
        V::unpack(bits[u], values);
        accumulate(s, values);
      }
    }
    for (; i < vectors; i += kThreads) {
      float values[V::kWidth];
      V::unpack(__ldg(xv + i), values);
      accumulate(s, values);
    }
    scalar_start = vectors * V::kWidth;
  }
  for (int64_t j = scalar_start + threadIdx.x; j < vocab; j += kThreads) {
    const float value[1] = {Element<T>::load(x[j])};
    accumulate(s, value);
  }
  s = block_reduce(s);
  if (threadIdx.x != 0) return;
  const float log_sum = logf(s.sum);
  lse[row] = s.max + log_sum;
  const int64_t target = targets[row];
  if (target < 0) {
    logp[row] = 0.0f;
  } else if (target >= vocab) {
    logp[row] = NAN;
    atomicMin(first_bad_row, static_cast<unsigned long long>(row));
  } else {
    // Relative to the row maximum, so that logits near 1e4 lose nothing to float32 rounding.
    logp[row] = (Element<T>::load(x[target]) - s.max) - log_sum;
  }
}

template <typename T, bool kVectorised>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* logits, int64_t vocab, int64_t row_stride,
                    const int64_t* __restrict__ targets, const float* __restrict__ lse,
                    const float* __restrict__ grad_logp, T* grad_logits) {
  // logits and grad_logits may be one buffer: each element is read, then written, by one thread.
  const int64_t row = blockIdx.x;
  const int64_t target = targets[row];
  const float g = (target >= 0 && target < vocab) ? grad_logp[row] : 0.0f;
  const float l = lse[row];
  const T* x = logits + row * row_stride;
  T* y = grad_logits + row * vocab;
  int64_t scalar_start = 0;
  if constexpr (kVectorised) {
    using V = Vector<T>;
    const int64_t vectors = vocab / V::kWidth;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    uint4* yv = reinterpret_cast<uint4*>(y);
    // Softmax gradient of one 16-byte vector starting at element `first`.
    auto gradient = [&](const uint4& bits, int64_t first) {
      float values[V::kWidth];
      V::unpack(bits, values);
#pragma unroll
      for (int k = 0; k < V::kWidth; ++k) {
        // d logp / d x_v = onehot(t)_v - softmax(x)_v
        values[k] = -g * __expf(values[k] - l);
        if (first + k == target) values[k] += g;
      }
      return V::pack(values);
    };
    int64_t i = threadIdx.x;
    if (g == 0.0f) {
      const uint4 zero = make_uint4(0, 0, 0, 0);
      for (; i < vectors; i += kThreads) yv[i] = zero;
    }
    // All loads of a step are issued before its stores (which may alias them when in place).
    for (; i + (kUnroll - 1) * kThreads < vectors; i += kUnroll * kThreads) {
      uint4 bits[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) bits[u] = xv[i + u * kThreads];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        yv[i + u * kThreads] = gradient(bits[u], (i + u * kThreads) * V::kWidth);
      }
    }
    for (; i < vectors; i += kThreads) yv[i] = gradient(xv[i], i * V::kWidth);
    scalar_start = vectors * V::kWidth;
  }
  for (int64_t j = scalar_start + threadIdx.x; j < vocab; j += kThreads) {
    float value = 0.0f;
    if (g != 0.0f) {
      value = -g * __expf(Element<T>::load(x[j]) - l);
      if (j == target) value += g;
    }
    y[j] = Element<T>::store(value);
  }
}

template <typename T>
cudaError_t launch_forward(const void* logits, int64_t rows, int64_t vocab, int64_t row_stride,
                           const int64_t* targets, float* logp, float* lse,
                           unsigned long long* first_bad_row, cudaStream_t stream) {
  const T* x = static_cast<const T*>(logits);
  const bool vectorised = aligned16(x) && row_stride % Vector<T>::kWidth == 0;
  const dim3 grid(static_cast<unsigned>(rows));
  if (vectorised) {
    forward_kernel<T, true>
        <<<grid, kThreads, 0, stream>>>(x, vocab, row_stride, targets, logp, lse, first_bad_row);
  } else {
    forward_kernel<T, false>
        <<<grid, kThreads, 0, stream>>>(x, vocab, row_stride, targets, logp, lse, first_bad_row);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const void* logits, int64_t rows, int64_t vocab, int64_t row_stride,
                            const int64_t* targets, const float* lse, const float* grad_logp,
                            void* grad_logits, cudaStream_t stream) {
  const T* x = static_cast<const T*>(logits);
  T* y = static_cast<T*>(grad_logits);
  const bool vectorised = aligned16(x) && aligned16(y) && row_stride % Vector<T>::kWidth == 0 &&
                          vocab % Vector<T>::kWidth == 0;
  const dim3 grid(static_cast<unsigned>(rows));
  if (vectorised) {
    backward_kernel<T, true>
        <<<grid, kThreads, 0, stream>>>(x, vocab, row_stride, targets, lse, grad_logp, y);
  } else {
    backward_kernel<T, false>
        <<<grid, kThreads, 0, stream>>>(x, vocab, row_stride, targets, lse, grad_logp, y);
  }
  return cudaGetLastError();
}

bool valid_sizes(int64_t rows, int64_t vocab, int64_t row_stride) {
  return rows >= 0 && rows <= INT_MAX && vocab >= 1 && row_stride >= vocab;
}

}  // namespace

cudaError_t token_logprobs_reset_bad_row(unsigned long long* first_bad_row, cudaStream_t stream) {
  return cudaMemsetAsync(first_bad_row, 0xff, sizeof(*first_bad_row), stream);
}

cudaError_t token_logprobs_forward(const void* logits, ScalarType type, int64_t rows, int64_t vocab,
                                   int64_t row_stride, const int64_t* targets, float* logp,
                                   float* lse, unsigned long long* first_bad_row,
                                   cudaStream_t stream) {
  if (!valid_sizes(rows, vocab, row_stride)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  switch (type) {
    case ScalarType::kFloat32:
      return launch_forward<float>(logits, rows, vocab, row_stride, targets, logp, lse,
                                   first_bad_row, stream);
    case ScalarType::kBFloat16:
      return launch_forward<__nv_bfloat16>(logits, rows, vocab, row_stride, targets, logp, lse,
                                           first_bad_row, stream);
    case ScalarType::kFloat16:
      return launch_forward<__half>(logits, rows, vocab, row_stride, targets, logp, lse,
                                    first_bad_row, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t token_logprobs_backward(const void* logits, ScalarType type, int64_t rows,
                                    int64_t vocab, int64_t row_stride, const int64_t* targets,
                                    const float* lse, const float* grad_logp, void* grad_logits,
                                    cudaStream_t stream) {
  if (!valid_sizes(rows, vocab, row_stride)) return cudaErrorInvalidValue;
  // In place needs each output row exactly where its input row is.
  if (grad_logits == logits && row_stride != vocab) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  switch (type) {
    case ScalarType::kFloat32:
      return launch_backward<float>(logits, rows, vocab, row_stride, targets, lse, grad_logp,
                                    grad_logits, stream);
    case ScalarType::kBFloat16:
      return launch_backward<__nv_bfloat16>(logits, rows, vocab, row_stride, targets, lse,
                                            grad_logp, grad_logits, stream);
    case ScalarType::kFloat16:
      return launch_backward<__half>(logits, rows, vocab, row_stride, targets, lse, grad_logp,
                                     grad_logits, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace corl::kernels
