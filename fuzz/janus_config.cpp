// A Janus checkpoint's config.json (transformers' JanusConfig): the JSON, its three sub-configs
// and every field's type and range. A config that loads must write back to one that loads to
// the same model.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "corl/model/janus_hf.h"
#include "corl/util/error.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // As load_janus_hf reads it: malformed JSON is its own DataError there.
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  corl::model::JanusHFConfig config;
  try {
    config = corl::model::janus_config_from_json(json, "config.json");
  } catch (const corl::DataError&) {
    return 0;
  }
  nlohmann::json written;
  try {
    written = corl::model::janus_config_to_json(config);
  } catch (const corl::DataError&) {
    return 0;  // read but not writable as Janus (documented: e.g. GroupNorm groups other than 32)
  }
  const auto again = corl::model::janus_config_from_json(written, "config.json (written)");
  corl::fuzz::require(corl::model::janus_config_to_json(again) == written,
                      "a written config reads back to the same model");
  return 0;
}
