// The KV cache of one session: per layer, keys (before RoPE; fp16 or f32) and values in fp16, head-major
// [kv_head][token][dim] so scoring and attention stream each head's keys contiguously.
// Address space for the whole capacity is reserved up front; pages are touched as tokens
// arrive, so a large maximum context costs memory only when it is used.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/backend.hpp"

namespace ts {

class KvCache {
 public:
  // Throws ts::Error(out_of_memory) when capacity tokens would not fit in available memory.
  // Without host storage (the keys and values live on a device: Backend::device_attention)
  // it only counts tokens, and layer() views hold no arrays.
  KvCache(int32_t n_layer, int32_t n_kv_heads, int32_t head_dim, int64_t capacity,
          KeyPrecision keys = KeyPrecision::f16, bool host_storage = true);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  KvLayerView layer(int32_t il) const;
  int64_t capacity() const { return capacity_; }
  KeyPrecision key_precision() const { return keys_; }
  int64_t size() const { return size_; }          // tokens stored
  void set_size(int64_t n) { size_ = n; }         // after appending, or to truncate
  size_t bytes_per_token() const { return bytes_per_token_; }
  size_t bytes_used() const { return size_t(size_) * bytes_per_token_; }

  // Available physical memory in bytes (MemAvailable), for checks and messages.
  static size_t available_memory();

 private:
  int32_t n_layer_, n_kv_heads_, head_dim_;
  int64_t capacity_;
  KeyPrecision keys_;
  int64_t size_ = 0;
  size_t bytes_per_token_;
  size_t mapped_bytes_ = 0;
  uint8_t* base_ = nullptr;
};

}  // namespace ts
