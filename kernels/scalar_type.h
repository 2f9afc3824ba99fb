// Element types the kernels read, named without LibTorch so that kernels/ stays framework-free.
#pragma once

namespace corl::kernels {

enum class ScalarType { kFloat32, kBFloat16, kFloat16 };

inline int element_size(ScalarType type) { return type == ScalarType::kFloat32 ? 4 : 2; }

}  // namespace corl::kernels
