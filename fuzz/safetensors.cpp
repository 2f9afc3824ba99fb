// A safetensors file: the header length, the JSON header, dtypes, shapes, offsets and the data
// area. A file that loads must write back and load to the same names, metadata and bytes.
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "corl/util/error.h"
#include "corl/util/safetensors.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = corl::fuzz::input_file(data, size, ".safetensors");
  corl::util::SafetensorsFile file;
  try {
    const auto metadata = corl::util::read_metadata(path);
    file = corl::util::load_safetensors(path);
    corl::fuzz::require(metadata == file.metadata, "read_metadata agrees with load_safetensors");
  } catch (const corl::DataError&) {
    return 0;
  }
  const std::string again = corl::fuzz::scratch_path(".again.safetensors");
  try {
    corl::util::save_safetensors(again, file.tensors, file.metadata);
  } catch (const std::invalid_argument&) {
    return 0;  // names the writer refuses ("__metadata__" is reserved): documented
  }
  const auto reread = corl::util::load_safetensors(again);
  corl::fuzz::require(reread.metadata == file.metadata, "metadata round-trips");
  corl::fuzz::require(reread.tensors.size() == file.tensors.size(), "tensor count round-trips");
  for (std::size_t i = 0; i < file.tensors.size(); ++i) {
    const auto& [name, tensor] = file.tensors[i];
    const auto& [name2, tensor2] = reread.tensors[i];
    corl::fuzz::require(name == name2 && tensor.scalar_type() == tensor2.scalar_type() &&
                            tensor.sizes() == tensor2.sizes(),
                        "names, dtypes and shapes round-trip");
    const auto a = tensor.contiguous(), b = tensor2.contiguous();
    corl::fuzz::require(
        a.nbytes() == 0 || std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0,
        "bytes round-trip");  // an empty tensor may have no storage: memcmp(nullptr) is undefined
  }
  return 0;
}
