// x W^T + b for a few rows at a time on the CPU, with the weight packed once into the layout of
// MKL's GEMM kernels (cblas_sgemm_pack, reached through LibTorch's mkl::_mkl_reorder_linear_weight
// and mkl::_mkl_linear) instead of rearranged again by every call. A decoding step multiplies 2 to
// 32 rows by every weight of the decoder; unpacked, each product first copies its whole weight
// into the kernel's layout for those few rows (docs/benchmarks.md has the measured gain).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace corl::ops {

// Products of at most this many rows take the packed path; larger ones amortise the rearranging
// themselves.
constexpr int64_t kPackedLinearMaxRows = 32;

class PackedLinear {
 public:
  // True when the product can take the packed path: float32 CPU tensors, a 2-D weight, no
  // gradient recorded, 1 to kPackedLinearMaxRows rows, and a LibTorch built with MKL.
  static bool applies(const torch::Tensor& x, const torch::Tensor& weight);

  // torch::nn::functional::linear(x, weight, bias), through the packed weight when `applies`
  // (equal up to float rounding). The weight is packed again only when it has changed (another
  // tensor, or written in place: its version counter) or the number of rows has, since MKL packs
  // for one row count. Not for concurrent use.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias = {});

  // How many times a weight has been packed (for tests and benchmarks).
  int64_t packs() const { return packs_; }

 private:
  torch::Tensor weight_;  // the tensor packed: identity and version are checked on every call
  int64_t version_ = 0;
  int64_t rows_ = 0;
  torch::Tensor packed_;
  int64_t packs_ = 0;
};

}  // namespace corl::ops
