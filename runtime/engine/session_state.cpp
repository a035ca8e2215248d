#include "engine/session_state.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "backend/backend.hpp"
#include "gguf/gguf_file.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr char kEnd[8] = {'T', 'S', 'E', 'N', 'D', '\0', '\0', '\0'};
constexpr uint32_t kVersion = 1;

// Identifies the model: FNV-1a over the GGUF header (metadata and tensor table) and the size.
uint64_t model_fingerprint(const Model& m) {
  const auto bytes = m.file().bytes().first(m.file().data_offset());
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
  return h ^ m.file().bytes().size();
}

struct Header {
  char magic[8];
  uint32_t version, key_bytes;  // key_bytes: 2 (fp16 keys; 0 in older files) or 4 (f32)
  uint64_t model;
  int32_t n_layer, n_head_kv, head_dim, n_vocab;
  int32_t mode, positions, n_init, n_local, k, cache, always_select;
  float tau;
  uint64_t n_tokens;
  uint32_t has_logits, reserved2;
  uint64_t cache_bytes, extra_bytes;
};

// Keys of KV head kh from token 0, in their stored precision.
void* key_data(const KvLayerView& v, int32_t kh) {
  return v.k32 ? static_cast<void*>(v.k32_at(kh, 0)) : static_cast<void*>(v.k_at(kh, 0));
}

using FilePtr = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb"), &std::fclose) {
    if (!f_) fail(Status::io, fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  void put(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_.get()) != n)
      fail(Status::io, fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }
  void close() {
    std::FILE* f = f_.release();
    if (std::fclose(f) != 0) fail(Status::io, fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }

 private:
  std::string path_;
  FilePtr f_;
};

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "rb"), &std::fclose) {
    if (!f_) fail(Status::io, fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    if (std::fseek(f_.get(), 0, SEEK_END) != 0) fail(Status::io, fmt::format("{}: cannot seek", path));
    size_ = uint64_t(std::ftell(f_.get()));
    std::rewind(f_.get());
  }
  void get(void* p, size_t n, const char* what) {
    if (n > size_ - pos_)
      fail(Status::format, fmt::format("{}: truncated session state ({} at offset {})", path_, what, pos_));
    if (std::fread(p, 1, n, f_.get()) != n) fail(Status::io, fmt::format("{}: read failed at offset {}", path_, pos_));
    pos_ += n;
  }
  uint64_t left() const { return size_ - pos_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  FilePtr f_;
  uint64_t size_ = 0, pos_ = 0;
};

// One layer's K and V of n tokens, head-major ([kv_head][n][head_dim]) as the file holds them: a
// CPU session's cache is in that layout already; a GPU session's goes through this host copy.
struct LayerRows {
  std::vector<uint16_t> k, v;
  LayerRows(const HParams& hp, uint64_t n) : k(size_t(hp.n_head_kv) * size_t(hp.head_dim) * n), v(k.size()) {}
};
}  // namespace

void SessionState::save(const Session& s, const std::string& extra, const std::string& path) {
  DeviceAttention* const device = s.backend_->device_attention();
  const HParams& hp = s.model().hparams();
  const SelectOptions& o = s.options().select;
  const std::string cache = s.policy().save_cache();
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.key_bytes = uint32_t(s.kv().layer(0).key_bytes());
  h.model = model_fingerprint(s.model());
  h.n_layer = hp.n_layer, h.n_head_kv = hp.n_head_kv, h.head_dim = hp.head_dim, h.n_vocab = hp.n_vocab;
  h.mode = int32_t(o.mode), h.positions = int32_t(o.positions), h.n_init = o.n_init, h.n_local = o.n_local;
  h.k = o.k, h.cache = o.cache, h.always_select = o.always_select, h.tau = o.tau;
  h.n_tokens = s.tokens().size();
  h.has_logits = s.has_logits_;
  h.cache_bytes = cache.size(), h.extra_bytes = extra.size();

  const std::string tmp = path + ".tmp";
  try {
    Writer w(tmp);
    w.put(&h, sizeof h);
    w.put(s.tokens().data(), s.tokens().size() * sizeof(int32_t));
    if (s.has_logits_) w.put(s.last_logits_.data(), s.last_logits_.size() * sizeof(float));
    w.put(cache.data(), cache.size());
    w.put(extra.data(), extra.size());
    const size_t row = size_t(hp.head_dim) * sizeof(uint16_t), key_row = size_t(hp.head_dim) * h.key_bytes;
    std::optional<LayerRows> rows;
    if (device) rows.emplace(hp, h.n_tokens);
    for (int32_t l = 0; l < hp.n_layer; ++l) {
      if (device) {
        device->read_kv(l, int64_t(h.n_tokens), rows->k.data(), rows->v.data());
        w.put(rows->k.data(), rows->k.size() * sizeof(uint16_t));
        w.put(rows->v.data(), rows->v.size() * sizeof(uint16_t));
        continue;
      }
      const KvLayerView v = s.kv().layer(l);
      for (int32_t kh = 0; kh < hp.n_head_kv; ++kh) w.put(key_data(v, kh), key_row * h.n_tokens);
      for (int32_t kh = 0; kh < hp.n_head_kv; ++kh) w.put(v.v_at(kh, 0), row * h.n_tokens);
    }
    w.put(kEnd, sizeof kEnd);
    w.close();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(Status::io, fmt::format("{}: cannot replace: {}", path, std::strerror(errno)));
  }
}

void SessionState::load(Session& s, const std::string& path,
                        const std::function<void(const std::string& extra)>& check_extra) {
  DeviceAttention* const device = s.backend_->device_attention();
  const HParams& hp = s.model().hparams();
  Reader r(path);
  Header h{};
  r.get(&h, sizeof h, "header");
  if (std::memcmp(h.magic, kMagic, 8) != 0) fail(Status::format, fmt::format("{}: not a TokenSelect session state file", path));
  if (h.version != kVersion)
    fail(Status::format, fmt::format("{}: session state version {} (this library reads {})", path, h.version, kVersion));
  if (h.model != model_fingerprint(s.model()) || h.n_layer != hp.n_layer || h.n_head_kv != hp.n_head_kv ||
      h.head_dim != hp.head_dim || h.n_vocab != hp.n_vocab)
    fail(Status::invalid_arg, fmt::format("{}: saved from a different model than this session's", path));
  if (h.n_tokens > uint64_t(s.n_ctx()))
    fail(Status::context_full, fmt::format("{}: holds {} tokens but the session's context is {}", path, h.n_tokens, s.n_ctx()));
  SelectOptions o;
  o.mode = h.mode == 1 ? AttentionMode::full : AttentionMode::tokenselect;
  o.positions = h.positions == 1 ? PositionMode::true_pos : PositionMode::remap;
  o.n_init = h.n_init, o.n_local = h.n_local, o.k = h.k, o.cache = h.cache != 0, o.always_select = h.always_select != 0;
  o.tau = h.tau;
  if (h.mode < 0 || h.mode > 1 || h.positions < 0 || h.positions > 1 || h.has_logits > 1)
    fail(Status::format, fmt::format("{}: bad attention settings or flags in the header", path));
  try {
    o.validate();
  } catch (const Error& e) {
    fail(Status::format, fmt::format("{}: {}", path, e.what()));
  }
  const uint32_t key_bytes = h.key_bytes == 0 ? 2 : h.key_bytes;
  if (key_bytes != 2 && key_bytes != 4) fail(Status::format, fmt::format("{}: bad key size in the header", path));
  if (key_bytes != s.kv().layer(0).key_bytes())
    fail(Status::invalid_arg, fmt::format("{}: holds {} keys but this session caches {} keys", path,
                                          key_bytes == 4 ? "f32" : "fp16", key_bytes == 2 ? "f32" : "fp16"));
  const uint64_t row = uint64_t(hp.head_dim) * sizeof(uint16_t), key_row = uint64_t(hp.head_dim) * key_bytes;
  const uint64_t kv_bytes = uint64_t(hp.n_layer) * uint64_t(hp.n_head_kv) * (row + key_row) * h.n_tokens;
  const uint64_t expected = h.n_tokens * sizeof(int32_t) + (h.has_logits ? uint64_t(hp.n_vocab) * sizeof(float) : 0) +
                            h.cache_bytes + h.extra_bytes + kv_bytes + sizeof kEnd;
  if (h.cache_bytes > r.left() || h.extra_bytes > r.left() || expected != r.left())
    fail(Status::format, fmt::format("{}: size does not match its header (truncated or corrupt)", path));

  std::vector<int32_t> tokens(static_cast<size_t>(h.n_tokens));
  r.get(tokens.data(), tokens.size() * sizeof(int32_t), "tokens");
  for (int32_t t : tokens)
    if (t < 0 || t >= hp.n_vocab) fail(Status::format, fmt::format("{}: token id {} outside the vocabulary", path, t));
  std::vector<float> logits(h.has_logits ? size_t(hp.n_vocab) : 0);
  r.get(logits.data(), logits.size() * sizeof(float), "logits");
  std::string cache(static_cast<size_t>(h.cache_bytes), '\0'), extra(static_cast<size_t>(h.extra_bytes), '\0');
  r.get(cache.data(), cache.size(), "selection cache");
  r.get(extra.data(), extra.size(), "extra state");
  if (check_extra) check_extra(extra);

  // Everything checked: now the session changes. Only a read error below (the size is known to
  // be right) can interrupt it, and then the session is emptied rather than left half-loaded.
  const SelectOptions before = s.options().select;
  s.set_select_options(o);
  try {
    s.policy_->load_cache(cache, int64_t(h.n_tokens));
  } catch (...) {
    s.set_select_options(before);
    throw;
  }
  try {
    std::optional<LayerRows> rows;
    if (device) rows.emplace(hp, h.n_tokens);
    for (int32_t l = 0; l < hp.n_layer; ++l) {
      if (device) {
        r.get(rows->k.data(), rows->k.size() * sizeof(uint16_t), "keys");
        r.get(rows->v.data(), rows->v.size() * sizeof(uint16_t), "values");
        device->write_kv(l, int64_t(h.n_tokens), rows->k.data(), rows->v.data());
        continue;
      }
      const KvLayerView v = s.kv_.layer(l);
      for (int32_t kh = 0; kh < hp.n_head_kv; ++kh) r.get(key_data(v, kh), key_row * h.n_tokens, "keys");
      for (int32_t kh = 0; kh < hp.n_head_kv; ++kh) r.get(v.v_at(kh, 0), row * h.n_tokens, "values");
    }
    char end[8];
    r.get(end, sizeof end, "end marker");
    if (std::memcmp(end, kEnd, 8) != 0) fail(Status::format, fmt::format("{}: bad end marker", path));
  } catch (...) {
    s.truncate(0);
    throw;
  }
  s.tokens_ = std::move(tokens);
  s.kv_.set_size(int64_t(h.n_tokens));
  s.last_logits_ = std::move(logits);
  s.has_logits_ = h.has_logits != 0;
}

}  // namespace ts
