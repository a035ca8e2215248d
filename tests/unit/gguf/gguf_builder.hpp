// A tiny GGUF byte builder for tests: well-formed files by default, with hooks to make any
// field hostile (raw entries, overridden counts, explicit offsets and data sizes).
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_types.hpp"

namespace ts::test {

// Little-endian byte appender.
class Bytes {
 public:
  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& u16(uint16_t v) { return raw(&v, 2); }
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& i64(int64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& f64(double v) { return raw(&v, 8); }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s.data(), s.size()); }
  Bytes& raw(const void* p, size_t n) {
    // resize + memcpy rather than insert(): g++ 12 warns falsely (-Wnonnull) on the latter.
    const size_t at = data.size();
    data.resize(at + n);
    if (n) std::memcpy(data.data() + at, p, n);
    return *this;
  }
  Bytes& append(const Bytes& other) { return raw(other.data.data(), other.data.size()); }
  Bytes& pad_to(uint64_t alignment) {
    while (data.size() % alignment) data.push_back(0);
    return *this;
  }
  std::vector<uint8_t> data;
};

// GGUF value type ids, spelled out so tests can also write invalid ones.
enum : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type = 0;
    std::optional<uint64_t> offset;      // default: packed after the previous, aligned
    std::optional<uint64_t> data_bytes;  // default: computed from type and dims
  };

  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  uint64_t alignment = 32;  // used for padding; add the key yourself to change what readers see
  std::optional<uint64_t> tensor_count;  // override the header counts
  std::optional<uint64_t> kv_count;

  // Metadata entries. kv_raw appends an already encoded entry (key, type, value).
  GgufBuilder& kv_raw(const Bytes& entry) {
    kvs_.append(entry);
    ++n_kv_;
    return *this;
  }
  GgufBuilder& kv(std::string_view key, uint32_t type, const Bytes& value) {
    return kv_raw(Bytes().str(key).u32(type).append(value));
  }
  GgufBuilder& kv_u32(std::string_view key, uint32_t v) { return kv(key, kU32, Bytes().u32(v)); }
  GgufBuilder& kv_i32(std::string_view key, int32_t v) { return kv(key, kI32, Bytes().u32(uint32_t(v))); }
  GgufBuilder& kv_u64(std::string_view key, uint64_t v) { return kv(key, kU64, Bytes().u64(v)); }
  GgufBuilder& kv_f32(std::string_view key, float v) { return kv(key, kF32, Bytes().f32(v)); }
  GgufBuilder& kv_bool(std::string_view key, bool v) { return kv(key, kBool, Bytes().u8(v)); }
  GgufBuilder& kv_str(std::string_view key, std::string_view v) { return kv(key, kString, Bytes().str(v)); }
  GgufBuilder& kv_str_array(std::string_view key, const std::vector<std::string>& v) {
    Bytes b;
    b.u32(kString).u64(v.size());
    for (const auto& s : v) b.str(s);
    return kv(key, kArray, b);
  }
  GgufBuilder& kv_i32_array(std::string_view key, const std::vector<int32_t>& v) {
    Bytes b;
    b.u32(kI32).u64(v.size());
    for (int32_t x : v) b.u32(uint32_t(x));
    return kv(key, kArray, b);
  }
  GgufBuilder& kv_f32_array(std::string_view key, const std::vector<float>& v) {
    Bytes b;
    b.u32(kF32).u64(v.size());
    for (float x : v) b.f32(x);
    return kv(key, kArray, b);
  }

  GgufBuilder& tensor(Tensor t) {
    tensors_.push_back(std::move(t));
    return *this;
  }
  GgufBuilder& tensor(std::string name, std::vector<uint64_t> dims, uint32_t type) {
    return tensor(Tensor{std::move(name), std::move(dims), type, {}, {}});
  }

  // Bytes a tensor occupies: from the type's block geometry, or 32 for an unknown type.
  static uint64_t natural_bytes(const Tensor& t) {
    if (t.data_bytes) return *t.data_bytes;
    const TypeTraits* tt = type_traits(t.type);
    if (!tt) return 32;
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    return n / uint64_t(tt->block_elems) * uint64_t(tt->block_bytes);
  }

  // Header, entries, tensor infos, padding, then tensor data filled with a per-tensor byte
  // pattern (tensor k: byte i = k * 16 + i mod 251). No padding after the last tensor, so a
  // file cut anywhere is invalid.
  std::vector<uint8_t> build() const {
    Bytes out;
    out.u32(magic).u32(version);
    out.u64(tensor_count.value_or(tensors_.size())).u64(kv_count.value_or(n_kv_));
    out.append(kvs_);
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const Tensor& t : tensors_) {
      const uint64_t off = t.offset.value_or((next + alignment - 1) / alignment * alignment);
      offsets.push_back(off);
      next = off + natural_bytes(t);
      out.str(t.name).u32(uint32_t(t.dims.size()));
      for (uint64_t d : t.dims) out.u64(d);
      out.u32(t.type).u64(off);
    }
    if (tensors_.empty()) return out.data;
    out.pad_to(alignment);
    const size_t data_start = out.data.size();
    for (size_t k = 0; k < tensors_.size(); ++k) {
      const uint64_t n = natural_bytes(tensors_[k]);
      if (offsets[k] > (1u << 20) || n > (1u << 20)) continue;  // hostile: leave unwritten
      if (out.data.size() < data_start + offsets[k] + n) out.data.resize(data_start + offsets[k] + n);
      for (uint64_t i = 0; i < n; ++i) out.data[data_start + offsets[k] + i] = uint8_t((k * 16 + i) % 251);
    }
    return out.data;
  }

 private:
  Bytes kvs_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace ts::test
