// GGUF reader: a valid file round-trips through every accessor; hostile files fail with
// Status::format (or io for open problems) and a message naming the culprit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gguf/gguf_file.hpp"
#include "gguf_builder.hpp"
#include "util/error.hpp"

namespace ts::test {
namespace {

using gguf::File;
using gguf::ValueType;
namespace fs = std::filesystem;

constexpr uint32_t kTypeF32 = 0, kTypeQ8_0 = 8, kTypeQ4_K = 12;

std::shared_ptr<const File> parse(const std::vector<uint8_t>& bytes) {
  return File::from_memory(bytes, "t.gguf");
}

// Expects parsing to throw Status::format with every fragment in the message.
void expect_format_error(const std::vector<uint8_t>& bytes, std::vector<std::string> fragments) {
  try {
    parse(bytes);
    ADD_FAILURE() << "parsed successfully; expected an error containing '" << fragments[0] << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::format) << e.what();
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("t.gguf: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

// Same, for a call on an already parsed file (typed getters).
template <typename Fn>
void expect_getter_error(Fn&& fn, std::vector<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << fragments[0] << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::format) << e.what();
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// A small file exercising every value type, three tensors of three types.
GgufBuilder valid_builder() {
  GgufBuilder b;
  b.kv_str("general.architecture", "llama");
  b.kv("k.u8", kU8, Bytes().u8(200));
  b.kv("k.i8", kI8, Bytes().u8(uint8_t(-5)));
  b.kv("k.u16", kU16, Bytes().u16(60000));
  b.kv("k.i16", kI16, Bytes().u16(uint16_t(int16_t(-30000))));
  b.kv_u32("k.u32", 4000000000u);
  b.kv_i32("k.i32", -7);
  b.kv_f32("k.f32", 1.5f);
  b.kv_bool("k.bool", true);
  b.kv_u64("k.u64", std::numeric_limits<uint64_t>::max());
  b.kv("k.i64", kI64, Bytes().i64(-(int64_t(1) << 40)));
  b.kv("k.f64", kF64, Bytes().f64(-2.25));
  b.kv_str_array("k.strs", {"a", "", "hello"});
  b.kv_i32_array("k.i32s", {1, -2, 3});
  b.kv_f32_array("k.f32s", {0.5f, -1.0f});
  b.kv("k.u8s", kArray, Bytes().u32(kU8).u64(3).u8(1).u8(2).u8(255));
  b.kv("k.u64s", kArray, Bytes().u32(kU64).u64(2).u64(5).u64(uint64_t(1) << 40));
  b.kv("k.f64s", kArray, Bytes().u32(kF64).u64(1).f64(0.25));
  b.kv("k.empty", kArray, Bytes().u32(kI32).u64(0));
  b.tensor("a", {4, 2}, kTypeF32);
  b.tensor("b", {64, 2}, kTypeQ8_0);
  b.tensor("c", {256}, kTypeQ4_K);
  return b;
}

TEST(GgufFile, ValidFileParses) {
  const auto bytes = valid_builder().build();
  const auto f = parse(bytes);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_EQ(f->bytes().size(), bytes.size());
  EXPECT_EQ(f->name(), "t.gguf");
  EXPECT_EQ(f->metadata().size(), 19u);
  EXPECT_EQ(f->metadata()[0].first, "general.architecture");

  ASSERT_EQ(f->tensors().size(), 3u);
  const gguf::TensorInfo& a = f->tensors()[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.n_dims, 2u);
  EXPECT_EQ(a.ne, (std::array<int64_t, 4>{4, 2, 1, 1}));
  EXPECT_EQ(a.type, GgmlType::F32);
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(a.nbytes, 32u);
  EXPECT_EQ(a.n_elements(), 8);
  EXPECT_EQ(a.data, bytes.data() + f->data_offset());

  const gguf::TensorInfo* b = f->find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, GgmlType::Q8_0);
  EXPECT_EQ(b->offset, 32u);
  EXPECT_EQ(b->nbytes, 4u * 34);  // 128 elements = 4 blocks
  EXPECT_EQ(b->data[0], 16);  // builder pattern: tensor 1 starts with byte 16
  EXPECT_EQ(b->data[b->nbytes - 1], uint8_t((16 + 135) % 251));

  const gguf::TensorInfo* c = f->find_tensor("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type, GgmlType::Q4_K);
  EXPECT_EQ(c->n_dims, 1u);
  EXPECT_EQ(c->nbytes, 144u);
  EXPECT_EQ(c->offset, 192u);  // 32 + 136 rounded up to 32
  EXPECT_EQ(c->data + c->nbytes, bytes.data() + bytes.size());
  EXPECT_EQ(f->find_tensor("missing"), nullptr);
}

TEST(GgufFile, ScalarGetters) {
  const auto bytes = valid_builder().build();
  const auto f = parse(bytes);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_u64("k.u8"), 200u);
  EXPECT_EQ(f->get_i64("k.u8"), 200);
  EXPECT_EQ(f->get_i64("k.i8"), -5);
  EXPECT_EQ(f->get_u64("k.u16"), 60000u);
  EXPECT_EQ(f->get_i64("k.i16"), -30000);
  EXPECT_EQ(f->get_u64("k.u32"), 4000000000u);
  EXPECT_EQ(f->get_i64("k.u32"), 4000000000);
  EXPECT_EQ(f->get_i64("k.i32"), -7);
  EXPECT_EQ(f->get_f64("k.f32"), 1.5);
  EXPECT_EQ(f->get_bool("k.bool"), true);
  EXPECT_EQ(f->get_u64("k.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f->get_i64("k.i64"), -(int64_t(1) << 40));
  EXPECT_EQ(f->get_f64("k.f64"), -2.25);

  const gguf::MetaValue* v = f->find("k.u16");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, ValueType::U16);
  EXPECT_EQ(v->u, 60000u);
  EXPECT_EQ(f->find("absent"), nullptr);
  EXPECT_FALSE(f->get_u64("absent"));
  EXPECT_FALSE(f->get_i64("absent"));
  EXPECT_FALSE(f->get_f64("absent"));
  EXPECT_FALSE(f->get_bool("absent"));
  EXPECT_FALSE(f->get_string("absent"));
  EXPECT_FALSE(f->get_string_array("absent"));
  EXPECT_FALSE(f->get_f32_array("absent"));
  EXPECT_FALSE(f->get_i32_array("absent"));
}

TEST(GgufFile, ArrayGetters) {
  const auto bytes = valid_builder().build();
  const auto f = parse(bytes);
  EXPECT_EQ(f->get_string_array("k.strs"), (std::vector<std::string_view>{"a", "", "hello"}));
  EXPECT_EQ(f->get_i32_array("k.i32s"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(f->get_i32_array("k.u8s"), (std::vector<int32_t>{1, 2, 255}));
  EXPECT_EQ(f->get_f32_array("k.f32s"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(f->get_f32_array("k.f64s"), (std::vector<float>{0.25f}));
  EXPECT_EQ(f->get_i32_array("k.empty"), std::vector<int32_t>{});
  const gguf::MetaValue* v = f->find("k.strs");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, ValueType::ARRAY);
  EXPECT_EQ(v->elem_type, ValueType::STRING);
  EXPECT_EQ(v->count, 3u);
  EXPECT_EQ(v->data_bytes, 3u * 8 + 6);
}

TEST(GgufFile, GetterTypeMismatchesNameKeyAndType) {
  const auto bytes = valid_builder().build();
  const auto f = parse(bytes);
  expect_getter_error([&] { f->get_u64("general.architecture"); }, {"'general.architecture'", "string"});
  expect_getter_error([&] { f->get_u64("k.i8"); }, {"'k.i8'", "negative"});
  expect_getter_error([&] { f->get_i64("k.u64"); }, {"'k.u64'", "does not fit i64"});
  expect_getter_error([&] { f->get_i64("k.f32"); }, {"'k.f32'", "f32"});
  expect_getter_error([&] { f->get_f64("k.u32"); }, {"'k.u32'", "u32"});
  expect_getter_error([&] { f->get_bool("k.u8"); }, {"'k.u8'", "u8"});
  expect_getter_error([&] { f->get_string("k.strs"); }, {"'k.strs'", "array of string"});
  expect_getter_error([&] { f->get_string_array("k.i32s"); }, {"'k.i32s'", "array of i32"});
  expect_getter_error([&] { f->get_string_array("k.bool"); }, {"'k.bool'", "bool"});
  expect_getter_error([&] { f->get_f32_array("k.i32s"); }, {"'k.i32s'", "array of i32"});
  expect_getter_error([&] { f->get_i32_array("k.f32s"); }, {"'k.f32s'", "array of f32"});
  expect_getter_error([&] { f->get_i32_array("k.strs"); }, {"'k.strs'", "array of string"});
  expect_getter_error([&] { f->get_i32_array("k.u64s"); }, {"'k.u64s'", "element 1", "does not fit i32"});
}

TEST(GgufFile, Version2AndNoTensorsAccepted) {
  GgufBuilder b;
  b.version = 2;
  b.kv_str("general.architecture", "qwen2");
  const auto f = parse(b.build());
  EXPECT_EQ(f->version(), 2u);
  EXPECT_TRUE(f->tensors().empty());
}

TEST(GgufFile, CustomAlignment) {
  GgufBuilder b;
  b.alignment = 64;
  b.kv_u32("general.alignment", 64);
  b.tensor("x", {8}, kTypeF32).tensor("y", {8}, kTypeF32);
  const auto f = parse(b.build());
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("y")->offset, 64u);
}

// ---- hostile inputs ------------------------------------------------------------------------

TEST(GgufHostile, TruncationAtEveryByteFails) {
  const auto full = valid_builder().build();
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    try {
      parse(cut);
      ADD_FAILURE() << "truncated file of " << n << " bytes parsed";
    } catch (const Error& e) {
      ASSERT_EQ(e.status(), Status::format) << n << ": " << e.what();
    }
  }
}

TEST(GgufHostile, WrongMagic) {
  GgufBuilder b;
  b.magic = 0x46554746;
  expect_format_error(b.build(), {"bad magic", "offset 0x0"});
}

TEST(GgufHostile, ByteSwappedVersionSaysBigEndian) {
  GgufBuilder b;
  b.version = 0x03000000;
  expect_format_error(b.build(), {"big-endian", "offset 0x4"});
}

TEST(GgufHostile, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    GgufBuilder b;
    b.version = v;
    expect_format_error(b.build(), {"version"});
  }
}

TEST(GgufHostile, HugeCounts) {
  for (uint64_t n : {uint64_t(1) << 63, ~uint64_t(0), uint64_t(1) << 32}) {
    GgufBuilder t = valid_builder();
    t.tensor_count = n;
    expect_format_error(t.build(), {"tensor count", "cannot fit"});
    GgufBuilder k = valid_builder();
    k.kv_count = n;
    expect_format_error(k.build(), {"metadata count", "cannot fit"});
  }
  // One more entry announced than present, a plausible count: runs out of bytes.
  GgufBuilder k;
  k.kv_str("general.architecture", "llama").kv_u32("a", 1);
  k.kv_count = 3;
  expect_format_error(k.build(), {"metadata entry 2", "key needs 0x8 bytes"});
}

TEST(GgufHostile, HugeLengths) {
  for (uint64_t len : {uint64_t(1) << 63, ~uint64_t(0), uint64_t(1000)}) {
    GgufBuilder key;
    key.kv_raw(Bytes().u64(len).raw("abcd", 4).u32(kU8).u8(1));
    expect_format_error(key.build(), {"metadata entry 0", "key"});

    GgufBuilder val;
    val.kv("k.s", kString, Bytes().u64(len).raw("x", 1));
    expect_format_error(val.build(), {"'k.s'", "string value"});

    GgufBuilder arr;
    arr.kv("k.arr", kArray, Bytes().u32(kU32).u64(len).u32(1));
    expect_format_error(arr.build(), {"'k.arr'", "array count"});

    GgufBuilder sarr;
    sarr.kv("k.sarr", kArray, Bytes().u32(kString).u64(len).str("x"));
    expect_format_error(sarr.build(), {"'k.sarr'", "array"});

    GgufBuilder elem;  // the count is fine, one element's length is not
    elem.kv("k.elem", kArray, Bytes().u32(kString).u64(2).str("x").u64(len).raw("yz", 2));
    expect_format_error(elem.build(), {"'k.elem'", "array string element"});

    GgufBuilder name;
    name.tensor("t", {32}, kTypeF32);
    auto bytes = name.build();
    std::memcpy(&bytes[24], &len, 8);  // the first tensor name's length
    expect_format_error(bytes, {"tensor info 0", "tensor name"});
  }
  // u64 elements: count * 8 would wrap to a small number without the division check.
  GgufBuilder wrap;
  wrap.kv("k.wrap", kArray, Bytes().u32(kU64).u64((uint64_t(1) << 61) + 1).u64(0));
  expect_format_error(wrap.build(), {"'k.wrap'", "array count"});
}

TEST(GgufHostile, StringCaps) {
  GgufBuilder key;
  key.kv_u32(std::string(64 * 1024, 'k'), 1);
  expect_format_error(key.build(), {"key length", "exceeds"});

  GgufBuilder empty;
  empty.kv_u32("", 1);
  expect_format_error(empty.build(), {"empty key"});

  GgufBuilder long_name;
  long_name.tensor(std::string(64, 'n'), {32}, kTypeF32);
  expect_format_error(long_name.build(), {"tensor info 0", "tensor name length 0x40 exceeds"});

  GgufBuilder ok_name;
  ok_name.tensor(std::string(63, 'n'), {32}, kTypeF32);
  EXPECT_NO_THROW(parse(ok_name.build()));

  GgufBuilder empty_name;
  empty_name.tensor("", {32}, kTypeF32);
  expect_format_error(empty_name.build(), {"empty tensor name"});
}

TEST(GgufHostile, BadValueTypeIds) {
  for (uint32_t t : {13u, 100u, 0xFFFFFFFFu}) {
    GgufBuilder b;
    b.kv_u32("before", 1).kv("k.bad", t, Bytes().u64(0));
    expect_format_error(b.build(), {"'k.bad'", "value type id " + std::to_string(t)});

    GgufBuilder a;
    a.kv("k.badarr", kArray, Bytes().u32(t).u64(0));
    expect_format_error(a.build(), {"'k.badarr'", "element type id " + std::to_string(t)});
  }
}

TEST(GgufHostile, BadBool) {
  GgufBuilder b;
  b.kv("k.b", kBool, Bytes().u8(2));
  expect_format_error(b.build(), {"'k.b'", "bool"});
}

TEST(GgufHostile, ArrayOfArrays) {
  GgufBuilder b;
  b.kv("k.nested", kArray, Bytes().u32(kArray).u64(1).u32(kU8).u64(1).u8(0));
  expect_format_error(b.build(), {"'k.nested'", "arrays of arrays"});
}

TEST(GgufHostile, DuplicateKeys) {
  GgufBuilder b;
  b.kv_u32("k.dup", 1).kv_u32("k.other", 2).kv_str("k.dup", "x");
  expect_format_error(b.build(), {"'k.dup'", "duplicate key", "first at offset 0x18"});
}

TEST(GgufHostile, DuplicateTensorNames) {
  GgufBuilder b;
  b.tensor("w", {32}, kTypeF32).tensor("w", {32}, kTypeF32);
  expect_format_error(b.build(), {"'w'", "duplicate tensor name"});
}

TEST(GgufHostile, BadTensorTypeIds) {
  for (uint32_t t : {4u, 5u, 16u, 29u, 31u, 0xFFFFFFFFu}) {
    GgufBuilder b;
    b.tensor("blk.0.attn_q.weight", {32}, t);
    expect_format_error(b.build(), {"'blk.0.attn_q.weight'", "unknown ggml type id " + std::to_string(t)});
  }
}

TEST(GgufHostile, BadNDims) {
  for (size_t n : {0, 5}) {
    GgufBuilder b;
    b.tensor("w", std::vector<uint64_t>(n, 1), kTypeF32);
    expect_format_error(b.build(), {"'w'", "n_dims " + std::to_string(n)});
  }
}

TEST(GgufHostile, BadDims) {
  GgufBuilder zero;
  zero.tensor("z", {32, 0}, kTypeF32);
  expect_format_error(zero.build(), {"'z'", "dimension 1 is 0"});

  GgufBuilder neg;
  neg.tensor({"neg", {~uint64_t(0)}, kTypeF32, {}, 32});
  expect_format_error(neg.build(), {"'neg'", "dimension 0"});

  GgufBuilder over;
  over.tensor({"over", {uint64_t(1) << 32, uint64_t(1) << 32}, kTypeF32, {}, 32});
  expect_format_error(over.build(), {"'over'", "element count overflows"});

  GgufBuilder bytes_over;  // 2^62 F32 elements = 2^64 bytes
  bytes_over.tensor({"big", {uint64_t(1) << 31, uint64_t(1) << 31}, kTypeF32, {}, 32});
  expect_format_error(bytes_over.build(), {"'big'", "byte size overflows"});

  GgufBuilder block;
  block.tensor("q", {33}, kTypeQ8_0);
  expect_format_error(block.build(), {"'q'", "not a multiple of the Q8_0 block size 32"});
}

TEST(GgufHostile, MisalignedTensorOffset) {
  GgufBuilder b;
  b.tensor({"m", {8}, kTypeF32, 4, {}});
  expect_format_error(b.build(), {"'m'", "not a multiple of the alignment 32"});
}

TEST(GgufHostile, OverlappingTensors) {
  GgufBuilder b;
  b.tensor({"first", {16}, kTypeF32, 0, {}}).tensor({"second", {8}, kTypeF32, 32, {}});
  expect_format_error(b.build(), {"'second'", "overlaps tensor 'first'"});

  GgufBuilder same;
  same.tensor({"p", {8}, kTypeF32, 0, {}}).tensor({"q", {8}, kTypeF32, 0, {}});
  expect_format_error(same.build(), {"overlaps"});
}

TEST(GgufHostile, DataPastEnd) {
  GgufBuilder b;
  b.tensor("ok", {8}, kTypeF32).tensor({"blk.3.attn_q.weight", {8}, kTypeF32, 1u << 21, {}});
  expect_format_error(b.build(), {"tensor 'blk.3.attn_q.weight': data [", "past end of file (size"});

  GgufBuilder wrap;
  wrap.tensor({"wrap", {8}, kTypeF32, ~uint64_t(31), {}});
  expect_format_error(wrap.build(), {"'wrap'", "overflows"});

  GgufBuilder cut = valid_builder();
  auto bytes = cut.build();
  bytes.pop_back();
  expect_format_error(bytes, {"'c'", "past end of file"});
}

TEST(GgufHostile, DataSectionPastEnd) {
  GgufBuilder b;
  b.tensor("x", {8}, kTypeF32);
  auto bytes = b.build();
  // Keep only the tensor infos: the data section would start past the end.
  bytes.resize(24 + 8 + 1 + 4 + 8 + 4 + 8);
  expect_format_error(bytes, {"data section", "past end of file"});
}

TEST(GgufHostile, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 0x80000001u}) {
    GgufBuilder b;
    b.kv_u32("general.alignment", a);
    expect_format_error(b.build(), {"'general.alignment'", "power of two"});
  }
  GgufBuilder wrong_type;
  wrong_type.kv_u64("general.alignment", 32);
  expect_format_error(wrong_type.build(), {"'general.alignment'", "must be u32, found u64"});
}

TEST(GgufHostile, UnprintableKeysAreEscaped) {
  GgufBuilder b;
  b.kv("bad\nkey\x01", kArray, Bytes().u32(kArray));
  expect_format_error(b.build(), {"'bad\\x0akey\\x01'"});
}

// ---- files on disk -----------------------------------------------------------------------

fs::path temp_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const fs::path p = fs::path(::testing::TempDir()) / name;
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return p;
}

void expect_io_error(const std::string& path, const std::string& fragment) {
  try {
    File::open(path);
    ADD_FAILURE() << "opened " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::io) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(GgufOpen, MapsAValidFile) {
  const auto bytes = valid_builder().build();
  const fs::path p = temp_file("ts_gguf_valid.gguf", bytes);
  const auto f = File::open(p.string());
  EXPECT_EQ(f->bytes().size(), bytes.size());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->find_tensor("c")->data[0], 32);
  fs::remove(p);
}

TEST(GgufOpen, BadFileOnDiskNamesPath) {
  const fs::path p = temp_file("ts_gguf_bad.gguf", std::vector<uint8_t>(40, 0));
  try {
    File::open(p.string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::format);
    EXPECT_NE(std::string(e.what()).find(p.string() + ": header: bad magic"), std::string::npos) << e.what();
  }
  fs::remove(p);
}

TEST(GgufOpen, MissingFile) {
  expect_io_error("/nonexistent/dir/model.gguf", "cannot open: No such file or directory");
}

TEST(GgufOpen, Directory) { expect_io_error(::testing::TempDir(), "Is a directory"); }

TEST(GgufOpen, NotARegularFile) { expect_io_error("/dev/null", "not a regular file"); }

TEST(GgufOpen, ZeroSizeFileIsAFormatError) {
  const fs::path p = temp_file("ts_gguf_empty.gguf", {});
  try {
    File::open(p.string());
    ADD_FAILURE() << "opened an empty file";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::format) << e.what();
    EXPECT_NE(std::string(e.what()).find("empty file"), std::string::npos) << e.what();
  }
  fs::remove(p);
}

}  // namespace
}  // namespace ts::test
