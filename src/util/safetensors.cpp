#include "corl/util/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "corl/util/error.h"

// The format stores little-endian bytes; tensors are written and read with plain memory copies.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors I/O assumes a little-endian host");

namespace corl::util {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "__metadata__";
// The reference implementation refuses bigger headers; so do we, before allocating one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {torch::kFloat64, "F64"},   {torch::kFloat32, "F32"}, {torch::kFloat16, "F16"},
    {torch::kBFloat16, "BF16"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
    {torch::kInt16, "I16"},     {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
    {torch::kBool, "BOOL"},
};

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  return nullptr;
}

bool dtype_from_name(const std::string& name, torch::ScalarType* type) {
  for (const auto& d : kDtypes)
    if (name == d.name) {
      *type = d.type;
      return true;
    }
  return false;
}

std::string shape_string(torch::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A file descriptor on a temporary file that is renamed over the target by commit(), and removed
// if anything goes wrong before that.
class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path)
      : path_(path), temp_(path + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd_ < 0) fail(std::strerror(errno));
  }
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }

  void write(const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd_, bytes, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(std::strerror(errno));
      }
      bytes += n;
      size -= static_cast<size_t>(n);
    }
  }

  void commit() {
    // The rename is only atomic for data that reached the disk first.
    if (::fsync(fd_) != 0) fail(std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(std::strerror(errno));
    std::error_code error;
    fs::rename(temp_, path_, error);
    if (error) fail(error.message());
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw DataError(path_ + ": cannot write: " + why);
  }

  std::string path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
  throw DataError(path + ": not a valid safetensors file: " + what);
}

struct Entry {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

// Checks one tensor's header entry against the dtype's element size; throws on any mismatch.
Entry parse_entry(const std::string& path, const std::string& name, const ordered_json& info) {
  const std::string where = "tensor \"" + name + "\": ";
  if (!info.is_object()) bad_file(path, where + "entry is not an object");
  const auto items = info.items();
  const auto unknown = std::find_if(items.begin(), items.end(), [](const auto& item) {
    return item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets";
  });
  if (unknown != items.end()) bad_file(path, where + "unknown field \"" + unknown.key() + "\"");
  if (!info.contains("dtype") || !info["dtype"].is_string())
    bad_file(path, where + "missing or non-string \"dtype\"");
  if (!info.contains("shape") || !info["shape"].is_array())
    bad_file(path, where + "missing or non-array \"shape\"");
  if (!info.contains("data_offsets") || !info["data_offsets"].is_array() ||
      info["data_offsets"].size() != 2)
    bad_file(path, where + "\"data_offsets\" is not a [begin, end] pair");

  Entry entry;
  entry.name = name;
  const std::string dtype = info["dtype"].get<std::string>();
  if (!dtype_from_name(dtype, &entry.type))
    bad_file(path, where + "unknown dtype \"" + dtype + "\"");

  uint64_t numel = 1;
  for (const auto& dim : info["shape"]) {
    if (!dim.is_number_unsigned() ||
        dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      bad_file(path, where + "shape " + info["shape"].dump() + " is not a list of sizes");
    const uint64_t size = dim.get<uint64_t>();
    entry.shape.push_back(static_cast<int64_t>(size));
    if (__builtin_mul_overflow(numel, size, &numel))
      bad_file(path, where + "shape " + info["shape"].dump() + " is too large");
  }
  const auto& offsets = info["data_offsets"];
  if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    bad_file(path, where + "data_offsets " + offsets.dump() + " are not byte offsets");
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  if (entry.end < entry.begin)
    bad_file(path, where + "data_offsets " + offsets.dump() + " end before they begin");
  uint64_t bytes = 0;
  const bool overflow =
      __builtin_mul_overflow(numel, static_cast<uint64_t>(c10::elementSize(entry.type)), &bytes);
  if (overflow || bytes != entry.end - entry.begin)
    bad_file(path, where + "shape " + info["shape"].dump() + " of " + dtype + " needs " +
                       (overflow ? std::string("too many") : std::to_string(bytes)) +
                       " bytes but data_offsets " + offsets.dump() + " hold " +
                       std::to_string(entry.end - entry.begin));
  return entry;
}

[[noreturn]] void refuse_tensor(const std::string& path, const std::string& name, const char* what,
                                std::optional<torch::ScalarType> dtype = std::nullopt) {
  std::string message = path + ": tensor \"" + name + "\" " + what;
  if (dtype) message += c10::toString(*dtype);
  throw std::invalid_argument(message);
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[kMetadataKey] = std::move(meta);
  }
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey || !names.insert(name).second)
      refuse_tensor(path, name, "is a reserved or repeated name");
    if (!tensor.defined()) refuse_tensor(path, name, "is undefined");
    const char* dtype = dtype_name(tensor.scalar_type());
    if (!dtype) refuse_tensor(path, name, "has unsupported dtype ", tensor.scalar_type());
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    header[name] = {{"dtype", dtype},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": cannot encode header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicWriter out(path);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  out.write(length, sizeof length);
  out.write(text.data(), text.size());
  // One CPU copy at a time, and none for a tensor that is already contiguous on the CPU.
  for (const auto& [name, tensor] : tensors) {
    const torch::Tensor bytes = tensor.detach().to(torch::kCPU).contiguous();
    out.write(bytes.data_ptr(), bytes.nbytes());
  }
  out.commit();
}

namespace {

struct Header {
  std::vector<Entry> entries;  // in the order of their data
  std::map<std::string, std::string> metadata;
};

// Opens `path` and validates its whole header against the file's size, leaving `in` at the first
// byte of tensor data.
Header read_header(const std::string& path, std::ifstream& in) {
  std::error_code error;
  const auto status = fs::status(path, error);
  if (!fs::exists(status)) throw DataError(path + ": no such file");
  if (!fs::is_regular_file(status)) throw DataError(path + ": not a regular file");
  in.open(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot read file");
  in.seekg(0, std::ios::end);
  const auto end_position = in.tellg();
  if (end_position < 0) throw DataError(path + ": cannot read file");
  const uint64_t file_size = static_cast<uint64_t>(end_position);
  in.seekg(0);

  if (file_size < 8)
    bad_file(path, "file is " + std::to_string(file_size) +
                       " bytes, shorter than the 8-byte header length");
  unsigned char length_bytes[8];
  if (!in.read(reinterpret_cast<char*>(length_bytes), 8)) throw DataError(path + ": cannot read");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(length_bytes[i]) << (8 * i);
  if (header_size > file_size - 8)
    bad_file(path, "header length " + std::to_string(header_size) + " goes beyond the file (" +
                       std::to_string(file_size) + " bytes)");
  if (header_size > kMaxHeaderBytes)
    bad_file(path, "header length " + std::to_string(header_size) + " exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes) + " bytes");
  std::string text(header_size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_size)))
    throw DataError(path + ": cannot read header");

  ordered_json header;
  try {
    header = ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    bad_file(path, std::string("malformed JSON header: ") + e.what());
  }
  if (!header.is_object()) bad_file(path, "JSON header is not an object");

  Header result;
  std::vector<Entry>& entries = result.entries;
  for (const auto& [name, info] : header.items()) {
    if (name != kMetadataKey) {
      entries.push_back(parse_entry(path, name, info));
      continue;
    }
    if (!info.is_object()) bad_file(path, "\"__metadata__\" is not an object");
    for (const auto& [key, value] : info.items()) {
      if (!value.is_string()) bad_file(path, "metadata \"" + key + "\" is not a string");
      result.metadata[key] = value.get<std::string>();
    }
  }

  // The tensors must tile the data area: no gap, no overlap, nothing after the last one.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_size = file_size - 8 - header_size;
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const auto& e : entries) {
    if (e.begin != covered)
      bad_file(path, "tensor \"" + e.name + "\" data_offsets [" + std::to_string(e.begin) + ", " +
                         std::to_string(e.end) + "] " +
                         (e.begin < covered ? "overlap tensor \"" + previous->name + "\""
                                            : "leave a gap after byte " + std::to_string(covered)));
    if (e.end > data_size)
      bad_file(path, "tensor \"" + e.name + "\" data_offsets end at " + std::to_string(e.end) +
                         ", beyond the data area of " + std::to_string(data_size) + " bytes");
    covered = e.end;
    previous = &e;
  }
  if (covered != data_size)
    bad_file(path, std::to_string(data_size - covered) + " trailing bytes after the last tensor");
  return result;
}

}  // namespace

std::map<std::string, std::string> read_metadata(const std::string& path) {
  std::ifstream in;
  return read_header(path, in).metadata;
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in;
  const Header header = read_header(path, in);
  SafetensorsFile file;
  file.metadata = header.metadata;
  for (const auto& e : header.entries) {
    torch::Tensor tensor = torch::empty(e.shape, torch::TensorOptions().dtype(e.type));
    if (!in.read(static_cast<char*>(tensor.data_ptr()),
                 static_cast<std::streamsize>(e.end - e.begin)))
      throw DataError(path + ": cannot read data of tensor \"" + e.name + "\"");
    // A bool byte other than 0 or 1 is undefined behaviour for LibTorch's kernels.
    if (e.type == torch::kBool) {
      const auto* bytes = static_cast<const uint8_t*>(tensor.data_ptr());
      for (uint64_t i = 0; i < e.end - e.begin; ++i)
        if (bytes[i] > 1)
          bad_file(path, "tensor \"" + e.name + "\" has a BOOL byte other than 0/1");
    }
    file.tensors.emplace_back(e.name, std::move(tensor));
  }
  return file;
}

namespace {

NamedTensors module_state(const torch::nn::Module& module) {
  NamedTensors state;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    if (item.value().defined()) state.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true))
    if (item.value().defined()) state.emplace_back(item.key(), item.value());
  return state;
}

}  // namespace

void save_module(const torch::nn::Module& module, const std::string& path,
                 const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, module_state(module), metadata);
}

std::map<std::string, std::string> load_module(torch::nn::Module& module, const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  std::map<std::string, const torch::Tensor*> stored;
  for (const auto& [name, tensor] : file.tensors) stored[name] = &tensor;

  const NamedTensors state = module_state(module);
  std::vector<std::string> missing, mis_shaped;
  std::set<std::string> expected;
  for (const auto& [name, target] : state) {
    expected.insert(name);
    const auto found = stored.find(name);
    if (found == stored.end())
      missing.push_back(name);
    else if (found->second->sizes() != target.sizes())
      mis_shaped.push_back(name + " (module " + shape_string(target.sizes()) + ", file " +
                           shape_string(found->second->sizes()) + ")");
  }
  std::vector<std::string> extra;
  for (const auto& [name, tensor] : file.tensors)
    if (!expected.count(name)) extra.push_back(name);

  if (!missing.empty() || !extra.empty() || !mis_shaped.empty()) {
    std::ostringstream message;
    message << path << ": weights do not match the model;";
    const auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      message << " " << what << " (" << names.size() << "):";
      for (const auto& n : names) message << " " << n << (&n == &names.back() ? ";" : ",");
    };
    list("missing", missing);
    list("extra", extra);
    list("mis-shaped", mis_shaped);
    std::string text = message.str();
    text.pop_back();
    throw DataError(text);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : state) {
    // copy_ converts dtype and device; tensors in `state` alias the module's own.
    torch::Tensor destination = target;
    destination.copy_(*stored.at(name));
  }
  return file.metadata;
}

}  // namespace corl::util
