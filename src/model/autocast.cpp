#include "corl/model/autocast.h"

#include <ATen/cpu/Utils.h>  // defines: at::cpu::get_cpu_capabilities

namespace corl::model {

Autocast::Autocast(bool on, at::DeviceType device) : on_(on), device_(device) {
  if (!on_) return;
  was_enabled_ = at::autocast::is_autocast_enabled(device_);
  was_dtype_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_dtype(device_, at::kBFloat16);
  at::autocast::set_autocast_enabled(device_, true);
}

Autocast::~Autocast() {
  if (!on_) return;
  at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, was_enabled_);
  at::autocast::set_autocast_dtype(device_, was_dtype_);
}

void Autocast::refresh() const {
  if (on_) at::autocast::clear_cache();
}

bool cpu_has_bf16_products() {
  const auto caps = at::cpu::get_cpu_capabilities();
  const auto has = [&](const char* name) {
    const auto it = caps.find(name);
    return it != caps.end() && it->second.isBool() && it->second.toBool();
  };
  return has("avx512_bf16") || has("amx_bf16");
}

}  // namespace corl::model
