#include "kv/kv_cache.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <fstream>
#include <string>

#include "util/error.hpp"

namespace ts {

size_t KvCache::available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024;
    in.ignore(1 << 10, '\n');
  }
  return SIZE_MAX;  // unknown: do not refuse
}

KvCache::KvCache(int32_t n_layer, int32_t n_kv_heads, int32_t head_dim, int64_t capacity, KeyPrecision keys,
                 bool host_storage)
    : n_layer_(n_layer), n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(capacity), keys_(keys) {
  if (capacity < 1) fail(Status::invalid_arg, "KV cache capacity must be at least 1 token");
  const size_t key_bytes = keys == KeyPrecision::f32 ? sizeof(float) : sizeof(uint16_t);
  bytes_per_token_ = size_t(n_layer) * size_t(n_kv_heads) * size_t(head_dim) * (key_bytes + sizeof(uint16_t));
  if (!host_storage) return;
  const double need = double(bytes_per_token_) * double(capacity);
  const size_t avail = available_memory();
  if (need > double(avail))
    fail(Status::out_of_memory,
         fmt::format("KV cache for {} tokens needs {:.2f} GiB ({} bytes/token) but only {:.2f} GiB of memory is "
                     "available; lower the context size",
                     capacity, need / double(1 << 30), bytes_per_token_, double(avail) / double(1 << 30)));
  mapped_bytes_ = bytes_per_token_ * size_t(capacity);
  void* p = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    fail(Status::out_of_memory, fmt::format("KV cache: cannot reserve {} bytes for {} tokens", mapped_bytes_, capacity));
  base_ = static_cast<uint8_t*>(p);
}

KvCache::~KvCache() {
  if (base_) munmap(base_, mapped_bytes_);
}

KvLayerView KvCache::layer(int32_t il) const {
  KvLayerView v;
  v.capacity = capacity_;
  v.n_kv_heads = n_kv_heads_;
  v.head_dim = head_dim_;
  if (!base_) return v;
  const size_t per_tensor = size_t(n_kv_heads_) * size_t(capacity_) * size_t(head_dim_);  // elements
  const size_t key_bytes = keys_ == KeyPrecision::f32 ? sizeof(float) : sizeof(uint16_t);
  uint8_t* layer = base_ + size_t(il) * per_tensor * (key_bytes + sizeof(uint16_t));
  if (keys_ == KeyPrecision::f32)
    v.k32 = reinterpret_cast<float*>(layer);
  else
    v.k = reinterpret_cast<uint16_t*>(layer);
  v.v = reinterpret_cast<uint16_t*>(layer + per_tensor * key_bytes);
  return v;
}

}  // namespace ts
