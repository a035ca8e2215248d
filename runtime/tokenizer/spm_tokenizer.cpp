// SentencePiece ("llama") vocabularies through libsentencepiece, with a ModelProto built from the
// GGUF vocabulary. Special tokens, the space prefix and invalid UTF-8 bytes are handled here,
// the way llama.cpp does, so sentencepiece only ever sees valid UTF-8 between special tokens.
#include <sentencepiece_processor.h>

#include <string>
#include <unordered_set>

#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace ts::tok {
namespace {

int parse_byte_piece(std::string_view p) {  // "<0xAB>" -> 0xAB, else -1
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int h = hex(p[3]), l = hex(p[4]);
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's whitespace mark

}  // namespace

SpmTokenizer::SpmTokenizer(const gguf::File& file, std::vector<std::string> pieces, std::vector<TokenType> types) {
  pieces_ = std::move(pieces);
  types_ = std::move(types);
  for (size_t i = 0; i < pieces_.size(); ++i) index_[pieces_[i]] = int32_t(i);
  add_space_prefix_ = file.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  strip_first_space_ = add_space_prefix_;
  add_bos_ = true;  // llama.cpp's default for SentencePiece vocabularies; the key overrides

  const auto scores = file.get_f32_array("tokenizer.ggml.scores");
  for (int& b : byte_ids_) b = -1;
  int unk = -1, n_bytes = 0;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    if (types_[i] == TokenType::unknown && unk < 0) unk = int(i);
    if (types_[i] == TokenType::byte) {
      const int b = parse_byte_piece(pieces_[i]);
      if (b < 0)
        fail(Status::format, file.name() + ": token " + std::to_string(i) + " has type byte but its text '" +
                                 pieces_[i] + "' is not <0xXX>");
      if (byte_ids_[b] < 0) { byte_ids_[b] = int32_t(i); ++n_bytes; }
    }
  }
  if (unk < 0) fail(Status::format, file.name() + ": SentencePiece vocabulary has no token of type unknown");

  // sentencepiece rejects empty and duplicate pieces; give those a unique unused name (they can
  // never be produced from text anyway: llama.cpp maps a text to its last id).
  std::vector<std::string> proto_pieces = pieces_;
  std::vector<TokenType> proto_types = types_;
  {
    std::unordered_set<std::string_view> seen;
    for (size_t i = pieces_.size(); i-- > 0;) {
      if (!pieces_[i].empty() && seen.insert(pieces_[i]).second) continue;
      proto_pieces[i] = "\xEE\x80\x80<ts-dup-" + std::to_string(i) + ">";  // private-use prefix
      proto_types[i] = TokenType::unused;
    }
  }
  auto control_or = [&](const char* key) -> int32_t {
    const auto v = file.get_i64(key);
    return v && *v >= 0 && uint64_t(*v) < pieces_.size() && types_[size_t(*v)] == TokenType::control ? int32_t(*v) : -1;
  };
  SpmProtoSpec spec;
  spec.pieces = &proto_pieces;
  spec.scores = scores ? &*scores : nullptr;
  spec.types = &proto_types;
  spec.byte_fallback = n_bytes > 0;
  spec.add_dummy_prefix = false;  // the prefix space is added here, per text fragment
  spec.unk_id = unk;
  spec.bos_id = control_or("tokenizer.ggml.bos_token_id");
  spec.eos_id = control_or("tokenizer.ggml.eos_token_id");
  if (spec.eos_id == spec.bos_id) spec.eos_id = -1;
  const std::string proto = build_spm_model_proto(spec);
  sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto st = sp_->LoadFromSerializedProto(proto);
  if (!st.ok())
    fail(Status::format, file.name() + ": sentencepiece rejects the vocabulary: " + std::string(st.message()));

  rendered_.resize(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) {
    if (types_[i] == TokenType::normal) {
      std::string& r = rendered_[i];
      const std::string& p = pieces_[i];
      for (size_t k = 0; k < p.size();) {
        if (p.compare(k, kSpace.size(), kSpace) == 0) { r += ' '; k += kSpace.size(); }
        else r += p[k++];
      }
    } else if (types_[i] == TokenType::byte) {
      rendered_[i] = std::string(1, char(parse_byte_piece(pieces_[i])));
    }
  }
  specials_.init(pieces_, types_);
}

SpmTokenizer::~SpmTokenizer() = default;

void SpmTokenizer::encode_valid(std::string_view text, std::vector<int32_t>& out) const {
  // Valid runs go to sentencepiece; each invalid byte becomes its byte token (what llama.cpp's
  // byte fallback gives it too).
  size_t run = 0, i = 0;
  std::vector<int> ids;
  auto flush = [&](size_t end) {
    if (end > run) {
      ids.clear();
      const auto st = sp_->Encode(std::string_view(text.data() + run, end - run), &ids);
      if (!st.ok()) fail(Status::internal, "sentencepiece Encode failed: " + std::string(st.message()));
      out.insert(out.end(), ids.begin(), ids.end());
    }
  };
  while (i < text.size()) {
    const utf8::Scan sc = utf8::scan(text, i);
    if (sc.kind == utf8::Scan::valid) { i += sc.len; continue; }
    flush(i);
    const int32_t b = byte_ids_[uint8_t(text[i])];
    if (b >= 0) {
      out.push_back(b);
    } else {  // no byte token: encode U+FFFD instead, as llama.cpp would see it
      ids.clear();
      if (sp_->Encode(utf8::kReplacement, &ids).ok()) out.insert(out.end(), ids.begin(), ids.end());
    }
    run = ++i;
  }
  flush(text.size());
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  bool prev_special = true;  // the first fragment gets the prefix space too
  std::string buf;
  for (const Fragment& f : specials_.split(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    buf.clear();
    if (add_space_prefix_ && prev_special) buf += ' ';
    buf.append(f.text);
    encode_valid(buf, out);
    prev_special = false;
  }
  return out;
}

std::string SpmTokenizer::token_bytes(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab())
    fail(Status::invalid_arg, "token id " + std::to_string(id) + " is out of range (vocabulary has " +
                                  std::to_string(n_vocab()) + " tokens)");
  switch (types_[size_t(id)]) {
    case TokenType::normal:
    case TokenType::byte: return rendered_[size_t(id)];
    case TokenType::user_defined: return pieces_[size_t(id)];
    case TokenType::control:
    case TokenType::unknown: return render_special ? pieces_[size_t(id)] : std::string();
    default: return {};
  }
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    std::string piece = token_bytes(id, render_special);
    if (first && !piece.empty()) {
      if (strip_first_space_ && piece[0] == ' ') piece.erase(0, 1);
      first = false;
    }
    out += piece;
  }
  return out;
}

}  // namespace ts::tok
