// Tokenizer tests: llama.cpp goldens (tests/reference/make_tokenizer_goldens.py) for the default
// model's byte-level BPE, the qwen2 and llama-bpe pre-tokenizers and a SentencePiece vocab;
// streaming decode; vocabulary validation errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../gguf/gguf_builder.hpp"
#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string data_dir() { return std::string(TS_TEST_DATA) + "/tokenizer"; }

std::string default_model_path() {
  if (const char* e = std::getenv("TS_MODEL"); e && *e) return e;
  return TS_DEFAULT_MODEL;
}

std::unique_ptr<Tokenizer> load_file(const std::string& path) {
  auto f = gguf::File::open(path);
  return Tokenizer::load(*f);
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += char(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

std::string show(std::string_view s) {  // printable form for failure messages
  std::string o;
  for (unsigned char c : s) {
    if (c == '\n') o += "\\n";
    else if (c == '\r') o += "\\r";
    else if (c == '\t') o += "\\t";
    else if (c < 0x20 || c == 0x7f) { char b[8]; snprintf(b, sizeof b, "\\x%02x", c); o += b; }
    else o += char(c);
  }
  return o;
}

struct Golden {
  std::string text, decoded;
  bool valid;
  std::vector<int32_t> special, plain;
};

std::vector<Golden> read_goldens(const std::string& name) {
  std::ifstream in(data_dir() + "/" + name + ".json");
  if (!in) ADD_FAILURE() << "cannot read golden " << name << ".json";
  json j = json::parse(in);
  std::vector<Golden> out;
  for (const auto& c : j.at("cases")) {
    Golden g;
    g.valid = c.contains("text");
    g.text = g.valid ? c["text"].get<std::string>() : unhex(c["hex"].get<std::string>());
    g.decoded = c.contains("decoded") ? c["decoded"].get<std::string>() : unhex(c["decoded_hex"].get<std::string>());
    g.special = c["special"].get<std::vector<int32_t>>();
    g.plain = c["plain"].get<std::vector<int32_t>>();
    out.push_back(std::move(g));
  }
  return out;
}

std::string stream_decode(const Tokenizer& tok, std::span<const int32_t> ids, bool render_special,
                          bool* partial_utf8 = nullptr) {
  TokenStreamDecoder d(tok, render_special);
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = d.push(id);
    if (partial_utf8 && !utf8::is_valid(piece)) *partial_utf8 = true;
    out += piece;
  }
  out += d.flush();
  return out;
}

// What byte-wise encoding of invalid UTF-8 round-trips to: each invalid byte itself, or U+FFFD
// where the vocabulary has no token for that byte.
std::string byte_wise(const Tokenizer& tok, std::string_view text) {
  const bool spm = tok.find("<0x41>").has_value();
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const utf8::Scan sc = utf8::scan(text, i);
    if (sc.kind == utf8::Scan::valid) { out.append(text.substr(i, sc.len)); i += sc.len; continue; }
    char hex[8];
    snprintf(hex, sizeof hex, "<0x%02X>", unsigned(uint8_t(text[i])));
    const bool has = spm ? tok.find(hex).has_value() : tok.find(tok::byte_to_unicode(uint8_t(text[i]))).has_value();
    if (has) out += text[i];
    else out.append(utf8::kReplacement);
    ++i;
  }
  return out;
}

// Compares a vocabulary against its llama.cpp goldens. Valid UTF-8 texts must match exactly.
// Invalid UTF-8 is encoded byte-wise here (llama.cpp substitutes U+FFFD first), so for those the
// check is a lossless round trip; agreement with llama.cpp is only reported.
void check_goldens(const Tokenizer& tok, const std::string& name) {
  const auto goldens = read_goldens(name);
  ASSERT_FALSE(goldens.empty());
  int n_valid = 0, n_valid_match = 0, n_invalid = 0, n_invalid_same = 0;
  for (const Golden& g : goldens) {
    SCOPED_TRACE("text: \"" + show(g.text) + "\"");
    const auto special = tok.encode(g.text, true);
    const auto plain = tok.encode(g.text, false);
    if (g.valid) {
      ++n_valid;
      EXPECT_EQ(special, g.special) << "parse_special=true";
      EXPECT_EQ(plain, g.plain) << "parse_special=false";
      const std::string dec = tok.decode(g.special, true);
      EXPECT_EQ(dec, g.decoded) << "decode";
      if (special == g.special && plain == g.plain && dec == g.decoded) ++n_valid_match;
    } else {
      ++n_invalid;
      if (special == g.special && plain == g.plain) ++n_invalid_same;
      const std::string expect = byte_wise(tok, g.text);
      EXPECT_EQ(tok.decode(special, true), expect) << "byte-wise round trip (special)";
      EXPECT_EQ(tok.decode(plain, true), expect) << "byte-wise round trip (plain)";
    }
    // Streaming equals whole-sequence decode (made valid UTF-8).
    for (bool rs : {true, false}) {
      bool partial = false;
      EXPECT_EQ(stream_decode(tok, special, rs, &partial), utf8::sanitize(tok.decode(special, rs)))
          << "stream decode, render_special=" << rs;
      EXPECT_FALSE(partial) << "stream decoder emitted partial UTF-8";
    }
  }
  std::printf("[ goldens  ] %s: %d/%d valid-UTF-8 texts identical to llama.cpp; %d/%d invalid-UTF-8 texts "
              "happen to match too (byte-wise by design)\n",
              name.c_str(), n_valid_match, n_valid, n_invalid_same, n_invalid);
  EXPECT_EQ(n_valid_match, n_valid);
}

TEST(TokenizerGolden, SmolLM2DefaultModel) {
  const std::string path = default_model_path();
  if (!fs::exists(path)) GTEST_SKIP() << "default model not found at " << path << " (set TS_MODEL)";
  auto tok = load_file(path);
  EXPECT_EQ(tok->n_vocab(), 49152);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->piece(1), "<|im_start|>");
  EXPECT_EQ(tok->type(2), TokenType::control);
  EXPECT_TRUE(tok->is_end_of_generation(2));  // <|im_end|>
  EXPECT_TRUE(tok->is_end_of_generation(0));  // <|endoftext|>
  EXPECT_FALSE(tok->is_end_of_generation(1));
  EXPECT_EQ(tok->find("<|im_end|>"), std::optional<int32_t>(2));
  check_goldens(*tok, "smollm2");
}

TEST(TokenizerGolden, Qwen2PreTokenizer) {
  auto tok = load_file(data_dir() + "/qwen2-bpe.gguf");
  check_goldens(*tok, "qwen2-bpe");
}

TEST(TokenizerGolden, LlamaBpePreTokenizer) {
  auto tok = load_file(data_dir() + "/llama-bpe.gguf");
  EXPECT_TRUE(tok->add_bos());
  const auto eot = tok->find("<|eot_id|>");
  ASSERT_TRUE(eot);
  EXPECT_TRUE(tok->is_end_of_generation(*eot));
  EXPECT_TRUE(tok->is_end_of_generation(tok->eos()));
  EXPECT_FALSE(tok->is_end_of_generation(tok->bos()));
  check_goldens(*tok, "llama-bpe");
}

TEST(TokenizerGolden, SentencePiece) {
  auto tok = load_file(data_dir() + "/tiny-spm.gguf");
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->piece(tok->bos()), "<s>");
  EXPECT_TRUE(tok->is_end_of_generation(tok->eos()));
  check_goldens(*tok, "tiny-spm");
}

// A character split over several byte tokens is never emitted in part.
TEST(TokenStream, MultiByteCharactersSplitAcrossTokens) {
  for (const char* file : {"qwen2-bpe.gguf", "tiny-spm.gguf"}) {
    SCOPED_TRACE(file);
    auto tok = load_file(data_dir() + "/" + file);
    const std::string text = "中文 👨‍👩‍👧 ä 𝟙 ok";
    const auto ids = tok->encode(text, false);
    size_t byte_pieces = 0;
    for (int32_t id : ids)
      if (!utf8::is_valid(tok->token_bytes(id, false))) ++byte_pieces;
    EXPECT_GT(byte_pieces, 0u) << "the test text should need partial-character tokens";
    TokenStreamDecoder d(*tok);
    std::string all;
    for (int32_t id : ids) {
      const std::string piece = d.push(id);
      EXPECT_TRUE(utf8::is_valid(piece)) << show(piece);
      all += piece;
    }
    all += d.flush();
    EXPECT_EQ(all, text);
  }
}

TEST(TokenStream, InvalidBytesBecomeReplacementCharacters) {
  auto tok = load_file(data_dir() + "/qwen2-bpe.gguf");
  const std::string text = "a\x80" "b\xe4\xb8" "c\xe4";
  const auto ids = tok->encode(text, false);
  EXPECT_EQ(tok->decode(ids, false), text);  // byte-level BPE is lossless where the bytes have tokens
  // SmolLM2's vocabulary has no token for 0xFF: such a byte becomes U+FFFD, as in llama.cpp.
  EXPECT_EQ(tok->decode(tok->encode("x\xffy", false), false), "x\xEF\xBF\xBDy");
  TokenStreamDecoder d(*tok);
  std::string out;
  for (int32_t id : ids) out += d.push(id);
  EXPECT_EQ(out, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c");  // the trailing \xe4 may still complete
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
  d.reset();
  EXPECT_EQ(d.flush(), "");
}

TEST(TokenStream, SentencePieceDropsFirstSpaceOnly) {
  auto tok = load_file(data_dir() + "/tiny-spm.gguf");
  const auto ids = tok->encode("the cat", false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(tok->token_bytes(ids[0], false)[0], ' ');
  EXPECT_EQ(tok->decode(ids, false), "the cat");
  EXPECT_EQ(stream_decode(*tok, ids, false), "the cat");
  // BOS first (rendered as nothing): the space of the first text token is still dropped.
  std::vector<int32_t> with_bos{tok->bos()};
  with_bos.insert(with_bos.end(), ids.begin(), ids.end());
  EXPECT_EQ(tok->decode(with_bos, false), "the cat");
  EXPECT_EQ(stream_decode(*tok, with_bos, false), "the cat");
}

TEST(Tokenizer, SpecialTokensOnlyWithParseSpecial) {
  auto tok = load_file(data_dir() + "/llama-bpe.gguf");
  const int32_t eot = *tok->find("<|eot_id|>"), ud = *tok->find("<special_ud>");
  auto has = [](const std::vector<int32_t>& v, int32_t id) { return std::find(v.begin(), v.end(), id) != v.end(); };
  EXPECT_TRUE(has(tok->encode("x<|eot_id|>y", true), eot));
  EXPECT_FALSE(has(tok->encode("x<|eot_id|>y", false), eot));
  EXPECT_TRUE(has(tok->encode("x<special_ud>y", false), ud));  // user-defined: always, like llama.cpp
  EXPECT_EQ(tok->token_bytes(eot, false), "");
  EXPECT_EQ(tok->token_bytes(eot, true), "<|eot_id|>");
  EXPECT_THROW(tok->token_bytes(tok->n_vocab(), true), Error);
  EXPECT_THROW(tok->token_bytes(-1, true), Error);
}

TEST(Tokenizer, LongTextSpeed) {  // prints timings only (no timed assertions in tests)
  const std::string model = default_model_path();
  const auto t_load = std::chrono::steady_clock::now();
  auto tok = load_file(fs::exists(model) ? model : data_dir() + "/qwen2-bpe.gguf");
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  // English-like text of pseudo-random words, so the per-call word cache does not make it trivial.
  static const char* const syl[] = {"ta", "re", "con", "sel", "ect", "ion", "ing", "the", "an", "pro", "ver",
                                    "al", "ly", "ment", "at", "es", "de", "tion", "in", "ou", "str", "ph"};
  std::string text;
  uint32_t x = 12345;
  while (text.size() < 500000) {
    x = x * 1664525u + 1013904223u;
    const int n = 1 + int(x >> 29);
    if ((x >> 8) % 17 == 0) text += "\n\n";
    else text += ' ';
    for (int i = 0; i < n; ++i) text += syl[(x >> (4 + 3 * i)) % 22];
    if ((x >> 12) % 11 == 0) text += ",";
    if ((x >> 16) % 13 == 0) text += ". The";
    if ((x >> 20) % 29 == 0) text += " " + std::to_string(x % 100000);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok->encode(text, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ perf     ] vocab %d loaded in %.3f s; encoded %zu bytes into %zu tokens in %.3f s\n",
              tok->n_vocab(), load_s, text.size(), ids.size(), s);
  EXPECT_EQ(tok->decode(ids, false), text);
}

// ---- validation -----------------------------------------------------------------------------

test::GgufBuilder bpe_builder(const std::vector<std::string>& tokens, const std::vector<int32_t>& types,
                              const std::vector<std::string>& merges, std::string_view pre = "qwen2") {
  test::GgufBuilder b;
  b.kv_str("general.architecture", "llama");
  b.kv_str("tokenizer.ggml.model", "gpt2");
  b.kv_str("tokenizer.ggml.pre", pre);
  b.kv_str_array("tokenizer.ggml.tokens", tokens);
  b.kv_i32_array("tokenizer.ggml.token_type", types);
  b.kv_str_array("tokenizer.ggml.merges", merges);
  return b;
}

void expect_load_error(const test::GgufBuilder& b, Status status, const std::string& needle) {
  const auto bytes = b.build();
  auto f = gguf::File::from_memory(bytes, "mem.gguf");
  try {
    Tokenizer::load(*f);
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TokenizerLoad, TinyBpeWorks) {
  const auto bytes = bpe_builder({"a", "b", "ab", "<|x|>"}, {1, 1, 1, 3}, {"a b"}).build();
  auto f = gguf::File::from_memory(bytes, "mem.gguf");
  auto tok = Tokenizer::load(*f);
  EXPECT_EQ(tok->encode("abab", false), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(tok->encode("a<|x|>b", true), (std::vector<int32_t>{0, 3, 1}));
  EXPECT_EQ(tok->encode("c", false), std::vector<int32_t>{});  // no token for 'c': dropped, as llama.cpp
}

TEST(TokenizerLoad, Errors) {
  expect_load_error(bpe_builder({"a", "b"}, {1}, {}), Status::format, "token_type has 1 entries");
  expect_load_error(bpe_builder({"a", "b"}, {1, 9}, {}), Status::format, "token_type[1]");
  expect_load_error(bpe_builder({"a", "b"}, {1, 1}, {"a c"}), Status::format, "merges[0]");
  expect_load_error(bpe_builder({"a", "b"}, {1, 1}, {"a b"}), Status::format, "merged result");
  expect_load_error(bpe_builder({"a", "b"}, {1, 1}, {"ab"}), Status::format, "merges[0]");
  expect_load_error(bpe_builder({"a", "b"}, {1, 1}, {}, "gpt-4o"), Status::unsupported, "'gpt-4o'");
  expect_load_error(bpe_builder({}, {}, {}), Status::format, "tokens is empty");
  {
    auto b = bpe_builder({"a", "b"}, {1, 1}, {});
    b.kv_u32("tokenizer.ggml.bos_token_id", 2);
    expect_load_error(b, Status::format, "bos_token_id = 2 is out of range");
  }
  {
    auto b = bpe_builder({"a", "b"}, {1, 1}, {});
    b.kv_f32_array("tokenizer.ggml.scores", {0.f});
    expect_load_error(b, Status::format, "scores has 1 entries");
  }
  {
    test::GgufBuilder b;
    b.kv_str("tokenizer.ggml.model", "bert");
    b.kv_str_array("tokenizer.ggml.tokens", {"a"});
    expect_load_error(b, Status::unsupported, "'bert'");
  }
  {
    test::GgufBuilder b;
    b.kv_str_array("tokenizer.ggml.tokens", {"a"});
    expect_load_error(b, Status::format, "tokenizer.ggml.model is missing");
  }
  {
    test::GgufBuilder b;  // SentencePiece without an unknown token
    b.kv_str("tokenizer.ggml.model", "llama");
    b.kv_str_array("tokenizer.ggml.tokens", {"a", "b"});
    b.kv_i32_array("tokenizer.ggml.token_type", {1, 1});
    expect_load_error(b, Status::format, "no token of type unknown");
  }
}

}  // namespace
}  // namespace ts
