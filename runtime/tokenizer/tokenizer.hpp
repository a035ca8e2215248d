// Text <-> token ids for the vocabularies GGUF files carry: byte-level BPE ("gpt2") with the
// model's pre-tokenizer, and SentencePiece ("llama") through the sentencepiece library.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ts::gguf { class File; }

namespace ts {

enum class TokenType : int32_t {
  undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6,
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from the file. Throws ts::Error (format/unsupported) with a precise
  // message for a missing or inconsistent vocabulary or an unknown model/pre-tokenizer.
  static std::unique_ptr<Tokenizer> load(const gguf::File& file);
  virtual ~Tokenizer() = default;

  // Encode UTF-8 text; identical to llama.cpp's llama_tokenize(add_special=false) for valid UTF-8.
  // Special tokens are split out first, longest text first: user-defined ones always, control
  // and unknown ones only with parse_special (as llama.cpp). Invalid UTF-8 never fails: each
  // invalid byte is encoded as its byte token (the pre-tokenizer treats it like U+FFFD), or as
  // U+FFFD where the vocabulary has no token for that byte (what llama.cpp encodes for it).
  // SentencePiece: a space is prefixed to every text fragment (add_space_prefix, default true).
  // Never adds BOS; callers add it when add_bos() says so. Thread-safe (const, no shared cache).
  virtual std::vector<int32_t> encode(std::string_view text, bool parse_special) const = 0;

  // The bytes a token contributes to the text (llama_token_to_piece). Control and unknown tokens
  // give "" unless render_special; user-defined tokens give their text. SentencePiece's "▁"
  // becomes ' ', byte tokens <0xNN> become that byte. Throws Error(invalid_arg) for a bad id.
  virtual std::string token_bytes(int32_t id, bool render_special) const = 0;

  // Whole-sequence decode: the concatenated token_bytes, no clean-up of spaces. SentencePiece
  // with add_space_prefix drops one leading space from the first non-empty piece. May contain
  // invalid UTF-8 (byte tokens); TokenStreamDecoder gives display-safe text.
  virtual std::string decode(std::span<const int32_t> ids, bool render_special) const = 0;

  int32_t n_vocab() const { return int32_t(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_.at(size_t(id)); }  // raw vocab string
  TokenType type(int32_t id) const { return types_.at(size_t(id)); }
  std::optional<int32_t> find(std::string_view piece) const;

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  // End-of-generation: eos, and control tokens named like end-of-turn (<|im_end|>, <|eot_id|>,
  // <|end_of_text|>, </s>, <|endoftext|>, <end_of_turn>, <|eom_id|>).
  bool is_end_of_generation(int32_t id) const;
  const std::string& chat_template() const { return chat_template_; }

 protected:
  friend class TokenStreamDecoder;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> index_;  // piece -> id
  bool strip_first_space_ = false;  // SentencePiece with add_space_prefix: decode drops it
  std::vector<std::string> pieces_;
  std::vector<TokenType> types_;
  int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = false;
  std::vector<int32_t> end_of_generation_;
  std::string chat_template_;
};

// Streaming detokeniser: feed token ids one at a time, get back only whole UTF-8 characters.
// Bytes of a character split across tokens are held until complete; invalid sequences are
// replaced by U+FFFD once it is certain they cannot complete (one per maximal invalid subpart).
// Concatenated output + flush() == the whole decode() with invalid sequences made U+FFFD.
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(const Tokenizer& tok, bool render_special = false)
      : tok_(tok), render_special_(render_special) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is pending (incomplete tail becomes U+FFFD)
  void reset() { pending_.clear(); first_ = true; }

 private:
  const Tokenizer& tok_;
  bool render_special_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace ts
