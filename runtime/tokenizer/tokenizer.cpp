// Tokenizer::load (common vocabulary checks, picks BPE or SentencePiece) and the stream decoder.
#include "tokenizer/tokenizer.hpp"

#include <algorithm>
#include <string>

#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace ts {

std::unique_ptr<Tokenizer> Tokenizer::load(const gguf::File& file) {
  const std::string& fname = file.name();
  const auto model = file.get_string("tokenizer.ggml.model");
  if (!model) fail(Status::format, fname + ": tokenizer.ggml.model is missing");
  const auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) fail(Status::format, fname + ": tokenizer.ggml.tokens is missing");
  const size_t n = tokens->size();
  if (n == 0) fail(Status::format, fname + ": tokenizer.ggml.tokens is empty");
  if (n > size_t(INT32_MAX)) fail(Status::format, fname + ": tokenizer.ggml.tokens has too many entries");

  std::vector<TokenType> types(n, TokenType::normal);  // llama.cpp's default without token_type
  if (const auto tt = file.get_i32_array("tokenizer.ggml.token_type")) {
    if (tt->size() != n)
      fail(Status::format, fname + ": tokenizer.ggml.token_type has " + std::to_string(tt->size()) +
                               " entries but tokenizer.ggml.tokens has " + std::to_string(n));
    for (size_t i = 0; i < n; ++i) {
      if ((*tt)[i] < 0 || (*tt)[i] > 6)
        fail(Status::format, fname + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] = " +
                                 std::to_string((*tt)[i]) + " is not a token type (0..6)");
      types[i] = TokenType((*tt)[i]);
    }
  }
  if (const gguf::MetaValue* sc = file.find("tokenizer.ggml.scores")) {
    if (sc->count != n)
      fail(Status::format, fname + ": tokenizer.ggml.scores has " + std::to_string(sc->count) +
                               " entries but tokenizer.ggml.tokens has " + std::to_string(n));
  }
  std::vector<std::string> pieces;
  pieces.reserve(n);
  for (std::string_view t : *tokens) pieces.emplace_back(t);

  std::unique_ptr<Tokenizer> tok;
  const bool spm = *model == "llama";
  if (*model == "gpt2") tok = std::make_unique<tok::BpeTokenizer>(file, std::move(pieces), std::move(types));
  else if (spm) tok = std::make_unique<tok::SpmTokenizer>(file, std::move(pieces), std::move(types));
  else
    fail(Status::unsupported, fname + ": tokenizer.ggml.model '" + std::string(*model) +
                                  "' is not supported (supported: gpt2, llama)");

  auto read_id = [&](const char* key, int32_t def) -> int32_t {
    const auto v = file.get_i64(key);
    if (!v) return def < int32_t(n) ? def : -1;
    if (*v < 0) return -1;  // some converters write -1 for "none"
    if (*v >= int64_t(n))
      fail(Status::format, fname + ": " + key + " = " + std::to_string(*v) + " is out of range (vocabulary has " +
                               std::to_string(n) + " tokens)");
    return int32_t(*v);
  };
  tok->bos_ = read_id("tokenizer.ggml.bos_token_id", spm ? 1 : -1);
  tok->eos_ = read_id("tokenizer.ggml.eos_token_id", spm ? 2 : -1);
  (void)read_id("tokenizer.ggml.unknown_token_id", spm ? 0 : -1);  // validated only
  if (const auto ab = file.get_bool("tokenizer.ggml.add_bos_token")) tok->add_bos_ = *ab;
  if (tok->add_bos_ && tok->bos_ < 0) tok->add_bos_ = false;
  if (const auto ct = file.get_string("tokenizer.chat_template")) tok->chat_template_ = std::string(*ct);

  static constexpr std::string_view kEog[] = {"<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>",
                                              "</s>", "<end_of_turn>", "<|eom_id|>"};
  if (tok->eos_ >= 0) tok->end_of_generation_.push_back(tok->eos_);
  for (size_t i = 0; i < n; ++i) {
    if (tok->types_[i] != TokenType::control || int32_t(i) == tok->eos_) continue;
    if (std::find(std::begin(kEog), std::end(kEog), tok->pieces_[i]) != std::end(kEog))
      tok->end_of_generation_.push_back(int32_t(i));
  }
  return tok;
}

std::optional<int32_t> Tokenizer::find(std::string_view piece) const {
  const auto it = index_.find(piece);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::find(end_of_generation_.begin(), end_of_generation_.end(), id) != end_of_generation_.end();
}

std::string TokenStreamDecoder::push(int32_t id) {
  std::string piece = tok_.token_bytes(id, render_special_);
  if (first_ && !piece.empty()) {
    if (tok_.strip_first_space_ && piece[0] == ' ') piece.erase(0, 1);
    first_ = false;
  }
  pending_ += piece;
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const utf8::Scan sc = utf8::scan(pending_, i);
    if (sc.kind == utf8::Scan::incomplete) break;  // may still complete with the next token
    if (sc.kind == utf8::Scan::valid) out.append(pending_, i, sc.len);
    else out.append(utf8::kReplacement);
    i += sc.len;
  }
  pending_.erase(0, i);
  return out;
}

std::string TokenStreamDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace ts
