// Token log-probabilities over a vocabulary, fused: one read of the logits per row in the forward
// pass, one read and one write in the backward pass, nothing of size rows x vocab allocated.
//
//   forward   lse_n  = log sum_v exp(x_nv)                 (online log-sum-exp, one pass)
//             logp_n = x_n,t_n - lse_n                      (0 where t_n < 0: nothing to score)
//   backward  dx_nv  = g_n * (onehot(t_n)_v - exp(x_nv - lse_n))     (0 rows where t_n < 0)
//
// Raw device pointers, sizes and a stream; no LibTorch. Every launcher returns the launch's
// cudaError_t and does not synchronise.
#pragma once

#include <cuda_runtime_api.h>  // defines: cudaStream_t, cudaError_t

#include <cstdint>

#include "scalar_type.h"  // defines: ScalarType

namespace corl::kernels {

// logits: rows x vocab, row n starting at logits + n * row_stride elements, of type `type`.
// targets: [rows] int64; a negative target is ignored (logp 0). A target >= vocab is a caller's
// error that must not fault: its logp is NaN and the smallest such row index is written to
// *first_bad_row, which the caller sets to UINT64_MAX beforehand (token_logprobs_reset_bad_row).
// logp and lse: [rows] float32.
cudaError_t token_logprobs_forward(const void* logits, ScalarType type, int64_t rows, int64_t vocab,
                                   int64_t row_stride, const int64_t* targets, float* logp,
                                   float* lse, unsigned long long* first_bad_row,
                                   cudaStream_t stream);

// Sets *first_bad_row to UINT64_MAX ("no bad target") on the stream.
cudaError_t token_logprobs_reset_bad_row(unsigned long long* first_bad_row, cudaStream_t stream);

// grad_logp: [rows] float32, the upstream gradient of each logp. grad_logits: rows x vocab of type
// `type`, contiguous (row stride = vocab); it may be the logits buffer itself (in place) when that
// is contiguous too. Targets outside [0, vocab) give a zero row.
cudaError_t token_logprobs_backward(const void* logits, ScalarType type, int64_t rows,
                                    int64_t vocab, int64_t row_stride, const int64_t* targets,
                                    const float* lse, const float* grad_logp, void* grad_logits,
                                    cudaStream_t stream);

}  // namespace corl::kernels
