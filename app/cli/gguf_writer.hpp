// A GGUF v3 writer for `tokenselect mkmodel`: metadata, tensor infos, then each tensor's bytes,
// aligned to 32. Tensor data is produced by a callback while writing, so a multi-gigabyte model
// never sits in memory. (The library only reads GGUF; this is the command's own small writer.)
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace cli {

// ggml type ids this writer emits (FORMATS.md).
enum class TensorType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8 };

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the row length
  TensorType type;
  uint64_t bytes() const;
};

using MetaScalar = std::variant<uint32_t, int32_t, float, bool, std::string>;
struct MetaArray {
  std::variant<std::vector<std::string>, std::vector<int32_t>> items;
};
using MetaValue = std::variant<uint32_t, int32_t, float, bool, std::string, MetaArray>;

class GgufWriter {
 public:
  void add(std::string key, MetaValue value) { meta_.emplace_back(std::move(key), std::move(value)); }
  void add_tensor(TensorSpec t) { tensors_.push_back(std::move(t)); }
  // Writes the file; fill(index, out) must write exactly tensors()[index].bytes() bytes into out.
  // progress(done, total) after each tensor. Written as path + ".part", renamed when complete;
  // throws cli::Error(TS_ERR_IO) on write failures, removing the partial file.
  void write(const std::string& path, const std::function<void(size_t, uint8_t*)>& fill,
             const std::function<void(size_t, size_t)>& progress) const;
  const std::vector<TensorSpec>& tensors() const { return tensors_; }

 private:
  std::vector<std::pair<std::string, MetaValue>> meta_;
  std::vector<TensorSpec> tensors_;
};

}  // namespace cli
