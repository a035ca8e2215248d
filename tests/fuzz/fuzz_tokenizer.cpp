// libFuzzer target: encode arbitrary bytes (parse_special on and off), decode, stream-decode.
// Tokenizers: the default model's ($TS_MODEL, else TS_DEFAULT_MODEL, else the small qwen2 golden
// vocabulary under TS_TEST_DATA) and, when present, the SentencePiece golden vocabulary.
// The first input byte picks the tokenizer and the flags; the rest is the text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace {

std::unique_ptr<ts::Tokenizer> load(const std::string& path) {
  if (path.empty() || !std::filesystem::exists(path)) return nullptr;
  auto f = ts::gguf::File::open(path);
  return ts::Tokenizer::load(*f);
}

struct Tokenizers {
  std::unique_ptr<ts::Tokenizer> bpe, spm;
  Tokenizers() {
    std::vector<std::string> candidates;
    if (const char* e = std::getenv("TS_MODEL"); e && *e) candidates.push_back(e);
#ifdef TS_DEFAULT_MODEL
    candidates.push_back(TS_DEFAULT_MODEL);
#endif
#ifdef TS_TEST_DATA
    candidates.push_back(std::string(TS_TEST_DATA) + "/tokenizer/qwen2-bpe.gguf");
    spm = load(std::string(TS_TEST_DATA) + "/tokenizer/tiny-spm.gguf");
#endif
    for (const auto& c : candidates)
      if ((bpe = load(c))) break;
    if (!bpe) {
      std::fprintf(stderr, "fuzz_tokenizer: no tokenizer model found; set TS_MODEL\n");
      std::abort();
    }
  }
};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: check failed: %s\n", what);
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Tokenizers toks;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const ts::Tokenizer& tok = (mode & 1) && toks.spm ? *toks.spm : *toks.bpe;
  const bool render_special = mode & 2;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (bool parse_special : {false, true}) {
    const auto ids = tok.encode(text, parse_special);
    for (int32_t id : ids) check(id >= 0 && id < tok.n_vocab(), "id in range");
    const std::string whole = tok.decode(ids, render_special);
    ts::TokenStreamDecoder dec(tok, render_special);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = dec.push(id);
      check(ts::utf8::is_valid(piece), "stream piece is valid UTF-8");
      streamed += piece;
    }
    streamed += dec.flush();
    check(streamed == ts::utf8::sanitize(whole), "stream decode equals whole decode");
    // Byte-level BPE: re-encoding the decoded text must reproduce it (a fixed point after one
    // round). Not for SentencePiece: like llama.cpp it gives the text after a user-defined
    // token a dummy-prefix space, so each round adds one.
    if (!parse_special && &tok != toks.spm.get() && ts::utf8::is_valid(text) && text.size() < 4096) {
      const std::string again = tok.decode(tok.encode(whole, false), false);
      check(again == whole, "decode(encode(decode(encode(x)))) == decode(encode(x))");
    }
  }
  return 0;
}
