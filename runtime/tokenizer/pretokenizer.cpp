// Pre-tokenizer regexes through PCRE2 (UTF + UCP, JIT compiled).
#include <pcre2.h>

#include <string>

#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace ts::tok {
namespace {

// Unicode White_Space, the set llama.cpp's unicode tables call whitespace. Spelled out instead of
// \s so the PCRE2 version's idea of \s (it adds U+180E) cannot make a difference.
#define TS_WS "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

// GPT-2's pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
const char* const kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" TS_WS "\\p{L}\\p{N}]+|[" TS_WS "]+(?![^" TS_WS "])";

// Llama 3's pattern with \p{N}{1,3} (llama-bpe) or \p{N} (qwen2):
// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
std::string llama3_like(const char* numbers) {
  return std::string("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|") +
         numbers + "| ?[^" TS_WS "\\p{L}\\p{N}]+[\\r\\n]*|[" TS_WS "]*[\\r\\n]+|[" TS_WS "]+(?![^" TS_WS "])|[" TS_WS "]+";
}

}  // namespace

std::vector<std::string> PreTokenizer::patterns_for(std::string_view pre) {
  if (pre == "smollm") return {"\\p{N}", kGpt2};
  // llama.cpp treats these names as one pre-tokenizer type (LLAMA3).
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return {llama3_like("\\p{N}{1,3}")};
  if (pre == "qwen2") return {llama3_like("\\p{N}")};
  return {};
}

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    int err = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.c_str()), p.size(), PCRE2_UTF | PCRE2_UCP,
                                     &err, &erroff, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
      fail(Status::internal, "pre-tokenizer regex does not compile at offset " + std::to_string(erroff) + ": " +
                                 reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    codes_.push_back(code);
  }
}

PreTokenizer::~PreTokenizer() {
  for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
}

std::vector<std::pair<size_t, size_t>> PreTokenizer::split(std::string_view text) const {
  // Work on a valid UTF-8 copy where each invalid byte is U+FFFD; `orig` maps positions back.
  std::string_view subject = text;
  std::string fixed;
  std::vector<size_t> orig;  // orig[i]: position in text of byte i of `fixed` (size+1 entries)
  if (!utf8::is_valid(text)) {
    fixed.reserve(text.size() + 16);
    orig.reserve(text.size() + 16);
    for (size_t i = 0; i < text.size();) {
      const utf8::Scan sc = utf8::scan(text, i);
      if (sc.kind == utf8::Scan::valid) {
        for (size_t k = 0; k < sc.len; ++k) { fixed += text[i + k]; orig.push_back(i); }
        i += sc.len;
      } else {  // one U+FFFD per invalid byte, as llama.cpp's decoder does
        fixed += utf8::kReplacement;
        orig.insert(orig.end(), 3, i);
        i += 1;
      }
    }
    orig.push_back(text.size());
    subject = fixed;
  }

  std::vector<std::pair<size_t, size_t>> frags{{0, subject.size()}};
  if (subject.empty()) return {};
  std::vector<std::pair<size_t, size_t>> next;
  for (void* vc : codes_) {
    auto* code = static_cast<pcre2_code*>(vc);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    if (!md) fail(Status::out_of_memory, "pre-tokenizer: cannot allocate match data");
    next.clear();
    next.reserve(frags.size() * 2);
    for (const auto& [b, e] : frags) {
      const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data() + b);
      const size_t len = e - b;
      size_t pos = 0;
      while (pos < len) {
        const int rc = pcre2_match(code, s, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;  // no further match (or a matching error): rest is one gap
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {  // empty match: none of our patterns produce one; step one character
          size_t step = 1;
          while (ms + step < len && (s[ms + step] & 0xC0) == 0x80) ++step;
          if (ms > pos) next.emplace_back(b + pos, b + ms);
          next.emplace_back(b + ms, b + ms + step);
          pos = ms + step;
          continue;
        }
        if (ms > pos) next.emplace_back(b + pos, b + ms);
        next.emplace_back(b + ms, b + me);
        pos = me;
      }
      if (pos < len) next.emplace_back(b + pos, e);
    }
    pcre2_match_data_free(md);
    frags.swap(next);
  }
  if (!orig.empty()) {
    // Map back; pieces that both start inside one replaced byte merge into the earlier piece.
    std::vector<std::pair<size_t, size_t>> out;
    out.reserve(frags.size());
    for (const auto& [b, e] : frags) {
      const size_t ob = orig[b], oe = orig[e];
      if (oe > ob) out.emplace_back(ob, oe);
    }
    return out;
  }
  return frags;
}

}  // namespace ts::tok
