// GGUF v2/v3 reader. Everything read from the file is untrusted: every read goes through a
// bounds-checked cursor, every count is compared with the bytes left before anything is
// allocated, and every derived size is computed with overflow checks (FORMATS.md "Hardening").
#include "gguf/gguf_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>

#include "util/error.hpp"

namespace ts::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;            // "GGUF" read little-endian
constexpr uint64_t kMaxKeyLen = (64u << 10) - 1;   // keys < 64 KiB
constexpr uint64_t kMaxStringLen = (256u << 20) - 1;  // string values < 256 MiB
constexpr uint64_t kMaxTensorNameLen = 63;         // names < 64 bytes (ggml's GGML_MAX_NAME)
constexpr uint32_t kMaxDims = 4;
// Smallest possible encodings, used to reject counts that cannot fit in the bytes left:
// kv = key length + 1 key byte + type + 1 value byte; tensor info = name length + 1 name
// byte + n_dims + one dim + type + offset.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

// A name or key from the file, made safe for a one-line message: control and non-ASCII bytes
// escaped, long names cut.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 96;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// Size in bytes of a scalar value type; 0 for STRING/ARRAY; nullopt for an unknown id.
std::optional<uint64_t> scalar_size(uint32_t t) {
  switch (static_cast<ValueType>(t)) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::STRING: case ValueType::ARRAY: return 0;
  }
  return std::nullopt;
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
    case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
      return true;
    default:
      return false;
  }
}

bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // unaligned, little-endian host (x86-64 / aarch64)
  return v;
}

// Decodes one packed scalar of type t at p into the widened fields of a MetaValue.
void decode_scalar(ValueType t, const uint8_t* p, MetaValue& v) {
  switch (t) {
    case ValueType::U8: v.u = load<uint8_t>(p); break;
    case ValueType::BOOL: v.u = load<uint8_t>(p); break;
    case ValueType::I8: v.i = load<int8_t>(p); break;
    case ValueType::U16: v.u = load<uint16_t>(p); break;
    case ValueType::I16: v.i = load<int16_t>(p); break;
    case ValueType::U32: v.u = load<uint32_t>(p); break;
    case ValueType::I32: v.i = load<int32_t>(p); break;
    case ValueType::U64: v.u = load<uint64_t>(p); break;
    case ValueType::I64: v.i = load<int64_t>(p); break;
    case ValueType::F32: v.f = load<float>(p); break;
    case ValueType::F64: v.f = load<double>(p); break;
    default: break;
  }
}

std::string type_desc(const MetaValue& v) {
  if (v.type != ValueType::ARRAY) return value_type_name(v.type);
  return fmt::format("array of {}", value_type_name(v.elem_type));
}

}  // namespace

const char* value_type_name(ValueType t) noexcept {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "invalid";
}

// Bounds-checked little-endian cursor. Errors name the file, the current context (set per
// entry, e.g. "key 'x'" or "tensor 'y'"), the field and the byte offset.
class File::Reader {
 public:
  Reader(const std::string& file, const uint8_t* base, uint64_t size)
      : file_(file), base_(base), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  const uint8_t* at(uint64_t off) const { return base_ + off; }
  void set_context(std::string ctx) { ctx_ = std::move(ctx); }

  [[noreturn]] void fail_at(uint64_t off, std::string_view problem) const {
    fail(Status::format, fmt::format("{}: {}: {} at offset {}", file_, ctx_, problem, hex(off)));
  }

  // Returns a pointer to the next n bytes and advances past them.
  const uint8_t* take(uint64_t n, std::string_view field) {
    if (n > left()) {
      fail_at(pos_, fmt::format("{} needs {} bytes but only {} are left (file size {})", field,
                                hex(n), hex(left()), hex(size_)));
    }
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }
  uint32_t u32(std::string_view field) { return load<uint32_t>(take(4, field)); }
  uint64_t u64(std::string_view field) { return load<uint64_t>(take(8, field)); }

  // A length-prefixed string, its length capped at max_len.
  std::string_view str(std::string_view field, uint64_t max_len) {
    const uint64_t start = pos_;
    const uint64_t len = u64(field);
    if (len > max_len) {
      fail_at(start, fmt::format("{} length {} exceeds the limit {}", field, hex(len), hex(max_len)));
    }
    const uint8_t* p = take(len, field);
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(len)};
  }

  // Rejects a count of items of at least min_bytes each that cannot fit in the bytes left.
  void check_count(uint64_t count, uint64_t min_bytes, uint64_t count_off, std::string_view what) {
    if (count > left() / min_bytes) {
      fail_at(count_off, fmt::format("{} {} cannot fit in the {} bytes left (file size {})", what,
                                     count, hex(left()), hex(size_)));
    }
  }

  // One metadata value of type t (already range-checked).
  MetaValue value(ValueType t) {
    if (t == ValueType::ARRAY) return array();
    MetaValue v;
    v.type = t;
    if (t == ValueType::STRING) {
      v.str = str("string value", kMaxStringLen);
      return v;
    }
    const uint64_t off = pos_;
    decode_scalar(t, take(*scalar_size(uint32_t(t)), value_type_name(t)), v);
    if (t == ValueType::BOOL && v.u > 1) fail_at(off, fmt::format("bool value {} is not 0 or 1", v.u));
    return v;
  }

  MetaValue array() {
    MetaValue v;
    v.type = ValueType::ARRAY;
    const uint64_t type_off = pos_;
    const uint32_t et = u32("array element type");
    const std::optional<uint64_t> esize = scalar_size(et);
    if (!esize) fail_at(type_off, fmt::format("array element type id {} is invalid", et));
    v.elem_type = static_cast<ValueType>(et);
    if (v.elem_type == ValueType::ARRAY) fail_at(type_off, "arrays of arrays are not supported");

    const uint64_t count_off = pos_;
    v.count = u64("array count");
    const uint64_t start = pos_;
    if (v.elem_type == ValueType::STRING) {
      check_count(v.count, 8, count_off, "array count");  // each string has an 8-byte length
      for (uint64_t k = 0; k < v.count; ++k) str("array string element", kMaxStringLen);
    } else {
      check_count(v.count, *esize, count_off, "array count");
      take(v.count * *esize, "array data");  // cannot overflow: count <= left / esize
    }
    v.data = base_ + start;
    v.data_bytes = pos_ - start;
    return v;
  }

 private:
  const std::string& file_;
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string ctx_ = "header";
};


std::shared_ptr<const File> File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  auto sys_error = [&](const char* what, int err) {
    fail(Status::io, fmt::format("{}: {}: {}", path, what, std::generic_category().message(err)));
  };
  if (fd < 0) sys_error("cannot open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    sys_error("cannot stat", err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    sys_error("cannot open", EISDIR);
  }
  if (!S_ISREG(st.st_mode)) {  // devices and pipes have no stable size to map
    ::close(fd);
    fail(Status::io, fmt::format("{}: cannot open: not a regular file", path));
  }
  if (st.st_size == 0) {
    ::close(fd);
    fail(Status::format, fmt::format("{}: empty file (0 bytes), not a GGUF file", path));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) sys_error("cannot map", map_err);

  std::shared_ptr<File> f(new File());  // owns the mapping from here on, also if parse throws
  f->name_ = path;
  f->mapping_ = map;
  f->base_ = static_cast<const uint8_t*>(map);
  f->size_ = size;
  f->parse();
  return f;
}

std::shared_ptr<const File> File::from_memory(std::span<const uint8_t> bytes, std::string name) {
  std::shared_ptr<File> f(new File());
  f->name_ = std::move(name);
  f->base_ = bytes.data();
  f->size_ = bytes.size();
  f->parse();
  return f;
}

File::~File() {
  if (mapping_) ::munmap(mapping_, size_);
}

void File::parse() {
  Reader r(name_, base_, size_);
  const uint8_t* magic = r.take(4, "magic");
  if (load<uint32_t>(magic) != kMagic) {
    r.fail_at(0, fmt::format("bad magic '{}' (not a GGUF file)",
                             printable({reinterpret_cast<const char*>(magic), 4})));
  }
  version_ = r.u32("version");
  if (version_ != 0 && (version_ & 0xFFFF) == 0) {
    r.fail_at(4, fmt::format("version {} is byte-swapped: big-endian GGUF is not supported",
                             hex(version_)));
  }
  if (version_ != 2 && version_ != 3) {
    r.fail_at(4, fmt::format("unsupported GGUF version {} (need 2 or 3)", version_));
  }
  const uint64_t n_tensors = r.u64("tensor count");
  const uint64_t n_kv = r.u64("metadata count");
  r.check_count(n_kv, kMinKvBytes, 16, "metadata count");
  r.check_count(n_tensors, kMinTensorInfoBytes, 8, "tensor count");

  parse_metadata(r, n_kv);
  r.set_context("header");
  r.check_count(n_tensors, kMinTensorInfoBytes, 8, "tensor count");
  parse_tensor_infos(r, n_tensors);

  // The data section starts at the next multiple of the alignment after the tensor infos.
  const uint64_t info_end = r.pos();
  data_offset_ = (info_end + alignment_ - 1) / alignment_ * alignment_;  // no overflow: < 2^63
  if (n_tensors > 0 && data_offset_ > size_) {
    r.set_context("data section");
    r.fail_at(info_end, fmt::format("start {} (aligned to {}) is past end of file (size {})",
                                    hex(data_offset_), alignment_, hex(size_)));
  }
  check_tensor_data();
}

void File::parse_metadata(Reader& r, uint64_t n_kv) {
  for (uint64_t k = 0; k < n_kv; ++k) {
    const uint64_t entry_off = r.pos();
    r.set_context(fmt::format("metadata entry {}", k));
    const std::string_view key = r.str("key", kMaxKeyLen);
    if (key.empty()) r.fail_at(entry_off, "empty key");
    r.set_context(fmt::format("key '{}'", printable(key)));
    if (auto it = meta_index_.find(key); it != meta_index_.end()) {
      r.fail_at(entry_off, fmt::format("duplicate key (first at offset {})",
                                       hex(meta_offsets_[it->second])));
    }
    const uint64_t type_off = r.pos();
    const uint32_t type = r.u32("value type");
    if (!scalar_size(type)) r.fail_at(type_off, fmt::format("value type id {} is invalid", type));
    MetaValue v = r.value(static_cast<ValueType>(type));

    meta_index_.emplace(std::string(key), meta_.size());
    meta_offsets_.push_back(entry_off);
    meta_.emplace_back(std::string(key), v);
  }

  // general.alignment governs all tensor offsets, so it is checked before any tensor.
  if (const MetaValue* a = find("general.alignment")) {
    const uint64_t off = meta_offsets_[meta_index_.find("general.alignment")->second];
    r.set_context("key 'general.alignment'");
    if (a->type != ValueType::U32) {
      r.fail_at(off, fmt::format("must be u32, found {}", type_desc(*a)));
    }
    if (a->u == 0 || (a->u & (a->u - 1)) != 0) {
      r.fail_at(off, fmt::format("value {} is not a power of two", a->u));
    }
    alignment_ = static_cast<uint32_t>(a->u);
  }
}

void File::parse_tensor_infos(Reader& r, uint64_t n_tensors) {
  for (uint64_t k = 0; k < n_tensors; ++k) {
    const uint64_t info_off = r.pos();
    r.set_context(fmt::format("tensor info {}", k));
    TensorInfo t;
    const std::string_view name = r.str("tensor name", kMaxTensorNameLen);
    if (name.empty()) r.fail_at(info_off, "empty tensor name");
    t.name = std::string(name);
    r.set_context(fmt::format("tensor '{}'", printable(name)));
    if (auto it = tensor_index_.find(name); it != tensor_index_.end()) {
      r.fail_at(info_off, fmt::format("duplicate tensor name (first at offset {})",
                                      hex(tensor_offsets_[it->second])));
    }

    const uint64_t dims_off = r.pos();
    t.n_dims = r.u32("n_dims");
    if (t.n_dims < 1 || t.n_dims > kMaxDims) {
      r.fail_at(dims_off, fmt::format("n_dims {} is not in 1..{}", t.n_dims, kMaxDims));
    }
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const uint64_t dim_off = r.pos();
      const uint64_t ne = r.u64("dimension");
      if (ne == 0 || ne > uint64_t(std::numeric_limits<int64_t>::max())) {
        r.fail_at(dim_off, fmt::format("dimension {} is {} (must be 1..2^63-1)", d, ne));
      }
      t.ne[d] = static_cast<int64_t>(ne);
      if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements)) {
        r.fail_at(dim_off, fmt::format("element count overflows at dimension {}", d));
      }
    }

    const uint64_t type_off = r.pos();
    const uint32_t type_id = r.u32("ggml type");
    const TypeTraits* tt = type_traits(type_id);
    if (!tt) r.fail_at(type_off, fmt::format("unknown ggml type id {}", type_id));
    t.type = static_cast<GgmlType>(type_id);
    if (t.ne[0] % tt->block_elems != 0) {
      r.fail_at(dims_off, fmt::format("ne[0] = {} is not a multiple of the {} block size {}",
                                      t.ne[0], tt->name, tt->block_elems));
    }
    int64_t nbytes = 0;
    if (__builtin_mul_overflow(n_elements / tt->block_elems, tt->block_bytes, &nbytes)) {
      r.fail_at(dims_off, "byte size overflows");
    }
    t.nbytes = static_cast<uint64_t>(nbytes);
    t.offset = r.u64("data offset");

    tensor_index_.emplace(t.name, tensors_.size());
    tensor_offsets_.push_back(info_off);
    tensors_.push_back(std::move(t));
  }
}

// Offsets aligned, data inside the file, and no two tensors sharing bytes.
void File::check_tensor_data() {
  auto fail_tensor = [&](const TensorInfo& t, const std::string& problem) {
    fail(Status::format, fmt::format("{}: tensor '{}': {}", name_, printable(t.name), problem));
  };
  for (size_t k = 0; k < tensors_.size(); ++k) {
    TensorInfo& t = tensors_[k];
    if (t.offset % alignment_ != 0) {
      fail_tensor(t, fmt::format("data offset {} is not a multiple of the alignment {} (info at "
                                 "offset {})", hex(t.offset), alignment_, hex(tensor_offsets_[k])));
    }
    uint64_t start = 0, end = 0;
    if (__builtin_add_overflow(data_offset_, t.offset, &start) ||
        __builtin_add_overflow(start, t.nbytes, &end)) {
      fail_tensor(t, fmt::format("data offset {} + size {} overflows", hex(t.offset), hex(t.nbytes)));
    }
    if (end > size_) {
      fail_tensor(t, fmt::format("data [{}, {}) past end of file (size {})", hex(start), hex(end),
                                 hex(size_)));
    }
    t.data = base_ + start;
  }

  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const TensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo& prev = *by_offset[k - 1];
    const TensorInfo& cur = *by_offset[k];
    if (prev.offset + prev.nbytes > cur.offset) {
      fail_tensor(cur, fmt::format("data [{}, {}) overlaps tensor '{}' [{}, {})",
                                   hex(data_offset_ + cur.offset),
                                   hex(data_offset_ + cur.offset + cur.nbytes), printable(prev.name),
                                   hex(data_offset_ + prev.offset),
                                   hex(data_offset_ + prev.offset + prev.nbytes)));
    }
  }
}

// ---- accessors ----------------------------------------------------------------------------

const MetaValue* File::find(std::string_view key) const {
  auto it = meta_index_.find(key);
  return it == meta_index_.end() ? nullptr : &meta_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

void File::fail_key(std::string_view key, const std::string& problem) const {
  auto it = meta_index_.find(key);
  const std::string where =
      it == meta_index_.end() ? "" : fmt::format(" (entry at offset {})", hex(meta_offsets_[it->second]));
  fail(Status::format, fmt::format("{}: key '{}': {}{}", name_, printable(key), problem, where));
}

// The entry for key if it has type want (and for arrays, any element type); nullptr if absent.
const MetaValue* File::expect(std::string_view key, ValueType want, const char* want_name) const {
  const MetaValue* v = find(key);
  if (v && v->type != want) {
    fail_key(key, fmt::format("expected {}, found {}", want_name, type_desc(*v)));
  }
  return v;
}

std::optional<uint64_t> File::get_u64(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return std::nullopt;
  if (!is_integer(v->type)) fail_key(key, fmt::format("expected an integer, found {}", type_desc(*v)));
  if (!is_signed(v->type)) return v->u;
  if (v->i < 0) fail_key(key, fmt::format("value {} is negative, expected unsigned", v->i));
  return static_cast<uint64_t>(v->i);
}

std::optional<int64_t> File::get_i64(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return std::nullopt;
  if (!is_integer(v->type)) fail_key(key, fmt::format("expected an integer, found {}", type_desc(*v)));
  if (is_signed(v->type)) return v->i;
  if (v->u > uint64_t(std::numeric_limits<int64_t>::max())) {
    fail_key(key, fmt::format("value {} does not fit i64", v->u));
  }
  return static_cast<int64_t>(v->u);
}

std::optional<double> File::get_f64(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::F32 && v->type != ValueType::F64) {
    fail_key(key, fmt::format("expected f32 or f64, found {}", type_desc(*v)));
  }
  return v->f;
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const MetaValue* v = expect(key, ValueType::BOOL, "bool");
  if (!v) return std::nullopt;
  return v->u != 0;
}

std::optional<std::string_view> File::get_string(std::string_view key) const {
  const MetaValue* v = expect(key, ValueType::STRING, "string");
  if (!v) return std::nullopt;
  return v->str;
}

std::optional<std::vector<std::string_view>> File::get_string_array(std::string_view key) const {
  const MetaValue* v = expect(key, ValueType::ARRAY, "array of string");
  if (!v) return std::nullopt;
  if (v->elem_type != ValueType::STRING) {
    fail_key(key, fmt::format("expected array of string, found {}", type_desc(*v)));
  }
  // Bounds were validated while parsing; re-walk the packed (length, bytes) pairs.
  std::vector<std::string_view> out;
  out.reserve(v->count);
  const uint8_t* p = v->data;
  for (uint64_t k = 0; k < v->count; ++k) {
    const uint64_t len = load<uint64_t>(p);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), static_cast<size_t>(len));
    p += 8 + len;
  }
  return out;
}

std::optional<std::vector<float>> File::get_f32_array(std::string_view key) const {
  const MetaValue* v = expect(key, ValueType::ARRAY, "array of f32");
  if (!v) return std::nullopt;
  std::vector<float> out(v->count);
  if (v->elem_type == ValueType::F32) {
    if (v->count) std::memcpy(out.data(), v->data, v->count * sizeof(float));
  } else if (v->elem_type == ValueType::F64) {
    for (uint64_t k = 0; k < v->count; ++k) out[k] = static_cast<float>(load<double>(v->data + 8 * k));
  } else {
    fail_key(key, fmt::format("expected array of f32, found {}", type_desc(*v)));
  }
  return out;
}

std::optional<std::vector<int32_t>> File::get_i32_array(std::string_view key) const {
  const MetaValue* v = expect(key, ValueType::ARRAY, "array of integers");
  if (!v) return std::nullopt;
  if (!is_integer(v->elem_type)) {
    fail_key(key, fmt::format("expected array of integers, found {}", type_desc(*v)));
  }
  const uint64_t esize = *scalar_size(uint32_t(v->elem_type));
  const bool sign = is_signed(v->elem_type);
  std::vector<int32_t> out(v->count);
  for (uint64_t k = 0; k < v->count; ++k) {
    MetaValue e;
    decode_scalar(v->elem_type, v->data + esize * k, e);
    const bool fits = sign ? (e.i >= INT32_MIN && e.i <= INT32_MAX) : e.u <= uint64_t(INT32_MAX);
    if (!fits) {
      fail_key(key, fmt::format("element {} = {} does not fit i32", k,
                                sign ? std::to_string(e.i) : std::to_string(e.u)));
    }
    out[k] = sign ? static_cast<int32_t>(e.i) : static_cast<int32_t>(e.u);
  }
  return out;
}

bool File::prefault(const std::function<bool(uint64_t, uint64_t)>& progress) const {
  constexpr uint64_t kStep = 8u << 20, kPage = 4096;
  if (mapping_) madvise(const_cast<uint8_t*>(base_), size_, MADV_WILLNEED);
  volatile uint8_t sink = 0;
  for (uint64_t done = 0; done < size_;) {
    const uint64_t end = std::min(size_, done + kStep);
    for (uint64_t p = done; p < end; p += kPage) sink = sink + base_[p];
    done = end;
    if (progress && !progress(done, size_)) return false;
  }
  return true;
}

}  // namespace ts::gguf
