#include "gguf_writer.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "api.hpp"

namespace cli {
namespace {

constexpr uint64_t kAlign = 32;  // general.alignment's default

// GGUF value type ids (FORMATS.md).
enum : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };

struct Block {
  uint64_t elems, bytes;
};
Block block_of(TensorType t) {
  switch (t) {
    case TensorType::F32: return {1, 4};
    case TensorType::F16: return {1, 2};
    case TensorType::Q4_0: return {32, 18};
    case TensorType::Q8_0: return {32, 34};
  }
  return {1, 4};
}

class Out {
 public:
  explicit Out(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb"), &std::fclose) {
    if (!f_) throw Error(TS_ERR_IO, fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_.get()) != n)
      throw Error(TS_ERR_IO, fmt::format("{}: write error: {}", path_, std::strerror(errno)));
    pos_ += n;
  }
  template <class T>
  void pod(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad() {
    static const uint8_t zeros[kAlign] = {};
    bytes(zeros, (kAlign - pos_ % kAlign) % kAlign);
  }
  void close() {
    if (std::fclose(f_.release()) != 0) throw Error(TS_ERR_IO, fmt::format("{}: write error on close", path_));
  }

 private:
  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f_;
  uint64_t pos_ = 0;
};

void write_value(Out& o, const MetaValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, uint32_t>) o.pod(kU32), o.pod(x);
        else if constexpr (std::is_same_v<T, int32_t>) o.pod(kI32), o.pod(x);
        else if constexpr (std::is_same_v<T, float>) o.pod(kF32), o.pod(x);
        else if constexpr (std::is_same_v<T, bool>) o.pod(kBool), o.pod(uint8_t(x));
        else if constexpr (std::is_same_v<T, std::string>) o.pod(kString), o.str(x);
        else {
          o.pod(kArray);
          std::visit(
              [&](const auto& items) {
                using I = typename std::decay_t<decltype(items)>::value_type;
                o.pod(std::is_same_v<I, std::string> ? kString : kI32);
                o.pod<uint64_t>(items.size());
                for (const auto& it : items) {
                  if constexpr (std::is_same_v<I, std::string>) o.str(it);
                  else o.pod(it);
                }
              },
              x.items);
        }
      },
      v);
}

}  // namespace

uint64_t TensorSpec::bytes() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  const Block b = block_of(type);
  return n / b.elems * b.bytes;
}

void GgufWriter::write(const std::string& path, const std::function<void(size_t, uint8_t*)>& fill,
                       const std::function<void(size_t, size_t)>& progress) const {
  const std::string part = path + ".part";  // renamed when complete: no half-written model under the name
  try {
    Out o(part);
    o.bytes("GGUF", 4);
    o.pod<uint32_t>(3);
    o.pod<uint64_t>(tensors_.size());
    o.pod<uint64_t>(meta_.size());
    for (const auto& [key, value] : meta_) {
      o.str(key);
      write_value(o, value);
    }
    uint64_t offset = 0;
    for (const TensorSpec& t : tensors_) {
      o.str(t.name);
      o.pod<uint32_t>(uint32_t(t.dims.size()));
      for (uint64_t d : t.dims) o.pod(d);
      o.pod(uint32_t(t.type));
      o.pod(offset);
      offset += (t.bytes() + kAlign - 1) / kAlign * kAlign;
    }
    o.pad();
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      buf.assign(tensors_[i].bytes(), 0);
      fill(i, buf.data());
      o.bytes(buf.data(), buf.size());
      o.pad();
      if (progress) progress(i + 1, tensors_.size());
    }
    o.close();
  } catch (...) {
    std::remove(part.c_str());
    throw;
  }
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    std::remove(part.c_str());
    throw Error(TS_ERR_IO, fmt::format("{}: cannot rename from {}: {}", path, part, std::strerror(errno)));
  }
}

}  // namespace cli
