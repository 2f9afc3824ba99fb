// The model's linear layer: torch::nn::Linear, whose products of a few rows with no gradient
// recorded (the decoding steps of sampling on the CPU) go through a packed copy of the weight
// (ops::PackedLinear). Parameters, their names and every other product are torch::nn::Linear's.
#pragma once

#include <torch/torch.h>

#include "corl/ops/packed_linear.h"

namespace corl::model {

struct LinearImpl : torch::nn::LinearImpl {
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x) { return packed(x, weight, bias); }
  ops::PackedLinear packed;
};
TORCH_MODULE(Linear);

}  // namespace corl::model
