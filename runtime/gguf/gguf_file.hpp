// A validated, memory-mapped GGUF v2/v3 file. Opening checks every count, length, type id,
// offset and size against the bytes present (FORMATS.md "Hardening"); any problem throws
// ts::Error(Status::format or io) whose message names the file, the field or tensor, and the
// byte offset. After a successful open every accessor is safe.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_types.hpp"

namespace ts::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t) noexcept;

// One metadata entry. Scalars are widened on read; arrays keep their element type and a view
// into the mapped file (strings of a string array are decoded on demand).
struct MetaValue {
  ValueType type{};
  ValueType elem_type{};      // for ARRAY
  uint64_t count = 0;         // for ARRAY: number of elements
  uint64_t u = 0;             // unsigned integers and bool
  int64_t i = 0;              // signed integers
  double f = 0;               // floats
  std::string_view str;       // STRING (view into the mapping)
  const uint8_t* data = nullptr;  // ARRAY: first element in the mapping
  uint64_t data_bytes = 0;        // ARRAY: bytes of the packed elements
};

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] is the contiguous row length
  GgmlType type{};
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class File {
 public:
  // Maps and validates `path`. Throws ts::Error on any problem.
  static std::shared_ptr<const File> open(const std::string& path);
  // Validates bytes already in memory (not copied; must outlive the File). For fuzzing and tests.
  static std::shared_ptr<const File> from_memory(std::span<const uint8_t> bytes, std::string name);

  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  std::span<const uint8_t> bytes() const { return {base_, size_}; }

  // Metadata. find() returns nullptr when the key is absent. The typed getters return
  // nullopt when absent and throw Status::format when present with an incompatible type
  // (any integer type is accepted for integer getters if the value fits).
  const MetaValue* find(std::string_view key) const;
  const std::vector<std::pair<std::string, MetaValue>>& metadata() const { return meta_; }
  std::optional<uint64_t> get_u64(std::string_view key) const;
  std::optional<int64_t> get_i64(std::string_view key) const;
  std::optional<double> get_f64(std::string_view key) const;  // F32 or F64
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  // Arrays: element type checked; strings are views into the mapping.
  std::optional<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  std::optional<std::vector<float>> get_f32_array(std::string_view key) const;
  std::optional<std::vector<int32_t>> get_i32_array(std::string_view key) const;  // I32/U32/I8/U8...

  // Reads the whole mapping into memory in steps, calling progress(done, total bytes) after
  // each, so a slow disk shows progress instead of stalling the first steps. Stops early and
  // returns false when progress returns false.
  bool prefault(const std::function<bool(uint64_t done, uint64_t total)>& progress) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  File() = default;
  void parse();
  // Parsing steps (gguf_file.cpp); each throws ts::Error(format) naming what and where.
  class Reader;  // bounds-checked cursor over the bytes, defined in gguf_file.cpp
  void parse_metadata(Reader& r, uint64_t n_kv);
  void parse_tensor_infos(Reader& r, uint64_t n_tensors);
  void check_tensor_data();
  [[noreturn]] void fail_key(std::string_view key, const std::string& problem) const;
  const MetaValue* expect(std::string_view key, ValueType want, const char* want_name) const;

  std::string name_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when we own an mmap
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, MetaValue>> meta_;
  std::vector<TensorInfo> tensors_;
  // Name -> index, with string_view lookup; also how duplicates are found while parsing.
  std::map<std::string, size_t, std::less<>> meta_index_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  std::vector<uint64_t> meta_offsets_;    // byte offset of each metadata entry (for messages)
  std::vector<uint64_t> tensor_offsets_;  // byte offset of each tensor info (for messages)
};

}  // namespace ts::gguf
