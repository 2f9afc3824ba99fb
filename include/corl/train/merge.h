// `corl merge`: a weighted average of models of one architecture, tensor by tensor,
//   theta = sum_k w_k theta_k,
// as the paper combines its mcq- and oe-refined models. Weights are used as given.
#pragma once

#include <string>
#include <vector>

namespace corl::train {

// Inputs are checkpoints or run folders (see resolve_checkpoint). The merged checkpoint keeps the
// first input's tokenizers. Throws corl::DataError when the models' configs or tensors differ.
void merge_checkpoints(const std::vector<std::string>& inputs, const std::vector<double>& weights,
                       const std::string& out);

}  // namespace corl::train
