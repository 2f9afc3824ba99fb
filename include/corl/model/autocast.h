// bf16 autocast of one device type's ops (run.autocast: bf16) for a scope: LibTorch's C++ API
// has the switches but no guard.
//
// Under autocast LibTorch casts each float32 weight to bf16 once and keeps the copy, keyed by the
// weight's tensor, until the cache is cleared: it never looks at the weight again. A weight
// changed in place (an optimizer step) would keep feeding its old copy to every later product.
// Python's torch.autocast clears the cache when its block ends, once per forward pass; a scope
// spanning a whole training run must say when the weights changed: refresh().
#pragma once

#include <ATen/autocast_mode.h>  // defines: at::autocast::set_autocast_enabled, ..._dtype

namespace corl::model {

class Autocast {
 public:
  Autocast(bool on, at::DeviceType device);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

  // Drops the cached bf16 copies: the next products cast the weights as they are now. Call after
  // every in-place change of a weight the scope's products read.
  void refresh() const;

 private:
  bool on_;
  at::DeviceType device_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

// Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); without, LibTorch emulates
// it, slower than float32.
bool cpu_has_bf16_products();

}  // namespace corl::model
