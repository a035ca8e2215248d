// Internal pieces of the tokenizer layer (not part of the public API).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace sentencepiece { class SentencePieceProcessor; }

namespace ts::tok {

// ---- special tokens -------------------------------------------------------------------------
// A piece of the input: either raw text (token < 0) or a matched special token.
struct Fragment {
  std::string_view text;
  int32_t token = -1;
};

// Splits text on special-token strings the way llama.cpp does: candidates sorted by length,
// longest first (ties by id); each candidate splits every raw fragment left so far at all of its
// occurrences, left to right. Control and unknown tokens take part only with parse_special;
// user-defined tokens always do.
class SpecialSplitter {
 public:
  void init(const std::vector<std::string>& pieces, const std::vector<TokenType>& types);
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Cand {
    std::string text;
    int32_t id;
    bool always;  // user-defined
  };
  std::vector<Cand> cands_;
};

// ---- pre-tokenizer --------------------------------------------------------------------------
// A sequence of PCRE2 regexes (UTF + UCP, JIT). Each regex splits every current fragment into its
// matches and the gaps between them (both kept), like llama.cpp's unicode_regex_split.
// Input may be invalid UTF-8: each invalid byte is matched as if it were U+FFFD (what llama.cpp
// turns it into) but the returned pieces are the original bytes.
class PreTokenizer {
 public:
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Returns byte ranges [begin, end) of `text`, in order, covering it.
  std::vector<std::pair<size_t, size_t>> split(std::string_view text) const;

  // Regexes for a tokenizer.ggml.pre name; empty when unknown.
  static std::vector<std::string> patterns_for(std::string_view pre);

 private:
  std::vector<void*> codes_;  // pcre2_code_8*
};

// ---- byte-level BPE -------------------------------------------------------------------------
class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(const gguf::File& file, std::vector<std::string> pieces, std::vector<TokenType> types);
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const override;
  std::string token_bytes(int32_t id, bool render_special) const override;
  std::string decode(std::span<const int32_t> ids, bool render_special) const override;

  // The merge loop for one pre-token (original bytes). Appends ids to out.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  std::unique_ptr<PreTokenizer> pre_;
  SpecialSplitter specials_;
  bool ignore_merges_ = false;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left,right) -> (rank, result)
  std::vector<std::string> decoded_;  // bytes of each normal token
  std::vector<int32_t> byte_token_;   // byte value -> id of its mapped single-char token (or -1)
};

// ---- SentencePiece --------------------------------------------------------------------------
class SpmTokenizer final : public Tokenizer {
 public:
  SpmTokenizer(const gguf::File& file, std::vector<std::string> pieces, std::vector<TokenType> types);
  ~SpmTokenizer() override;
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const override;
  std::string token_bytes(int32_t id, bool render_special) const override;
  std::string decode(std::span<const int32_t> ids, bool render_special) const override;

 private:
  void encode_valid(std::string_view text, std::vector<int32_t>& out) const;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  SpecialSplitter specials_;
  bool add_space_prefix_ = true;
  int32_t byte_ids_[256];
  std::vector<std::string> rendered_;  // bytes of each normal/byte token
};

// Serialise a SentencePiece ModelProto (protobuf wire format) for LoadFromSerializedProto.
struct SpmProtoSpec {
  const std::vector<std::string>* pieces;
  const std::vector<float>* scores;
  const std::vector<TokenType>* types;
  bool byte_fallback = true;
  bool add_dummy_prefix = false;
  int32_t unk_id = 0, bos_id = -1, eos_id = -1, pad_id = -1;
};
std::string build_spm_model_proto(const SpmProtoSpec& spec);

// GPT-2 byte <-> unicode mapping.
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the mapped code point
int byte_from_unicode(uint32_t cp);             // -1 when cp is not a mapped code point

}  // namespace ts::tok
