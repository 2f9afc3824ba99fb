// Model weights in the safetensors format (https://github.com/huggingface/safetensors), so that a
// checkpoint written here is read by Python's `safetensors.torch.load_file` and the other way
// round.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace corl::util {

// Tensors in file order; names are dotted as torch::nn::Module gives them, e.g.
// "language_model.model.layers.0.self_attn.q_proj.weight".
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes an 8-byte little-endian header length N, N bytes of JSON header
// {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8, then each tensor's contiguous little-endian bytes in the
// order given. Dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL. Tensors may live on any
// device and be non-contiguous; they are copied to the CPU one at a time while streaming to a
// temporary file that is fsync'ed and renamed over `path`, so a killed run never leaves a
// half-written file. Throws std::invalid_argument for a duplicate or reserved name or an
// unsupported dtype, corl::DataError when the file cannot be written.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  NamedTensors tensors;  // CPU tensors, in the order of their data in the file
  std::map<std::string, std::string> metadata;
};

// Validates the whole header (JSON syntax and fields, dtypes, shapes against byte sizes, offsets
// tiling the data area exactly, no trailing bytes) before reading any data. Throws
// corl::DataError "PATH: what" for every problem; never returns partial data.
SafetensorsFile load_safetensors(const std::string& path);

// The file's "__metadata__" (empty when it has none), after the same header checks as
// load_safetensors but without reading any tensor data.
std::map<std::string, std::string> read_metadata(const std::string& path);

// The module's parameters and buffers (recursively, dotted names), in named_parameters() then
// named_buffers() order.
void save_module(const torch::nn::Module& module, const std::string& path,
                 const std::map<std::string, std::string>& metadata = {});

// Strict load: the file must hold exactly the module's parameters and buffers, with their shapes.
// Otherwise throws corl::DataError listing every missing, extra and mis-shaped name (with both
// shapes) and leaves the module untouched. Values are converted to each parameter's dtype and
// device. Returns the file's metadata.
std::map<std::string, std::string> load_module(torch::nn::Module& module, const std::string& path);

}  // namespace corl::util
