// The tim reward's score: whether the policy's own hidden states of an image and of its prompt
// line up, token by token, in both directions.
#pragma once

#include <torch/torch.h>

namespace corl::reward {

// Max-match cosine between image and text hidden states ([n, H], [m, H]), in [-1, 1].
double text_image_matching(const torch::Tensor& image_hidden, const torch::Tensor& text_hidden);

}  // namespace corl::reward
