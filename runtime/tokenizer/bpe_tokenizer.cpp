// Byte-level BPE ("gpt2" vocabularies): GPT-2 byte mapping, pre-tokenizer, lowest-rank merge loop.
#include <deque>
#include <queue>
#include <string>

#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace ts::tok {
namespace {

struct ByteMap {
  std::string to[256];
  int from[324];  // code points 0..323 cover the whole mapping
  ByteMap() {
    for (int& f : from) f = -1;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + extra++);
      utf8::append(to[b], cp);
      from[cp] = b;
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to[b]; }
int byte_from_unicode(uint32_t cp) { return cp < 324 ? byte_map().from[cp] : -1; }

BpeTokenizer::BpeTokenizer(const gguf::File& file, std::vector<std::string> pieces, std::vector<TokenType> types) {
  pieces_ = std::move(pieces);
  types_ = std::move(types);
  for (size_t i = 0; i < pieces_.size(); ++i) index_[pieces_[i]] = int32_t(i);  // last duplicate wins

  const auto pre_key = file.get_string("tokenizer.ggml.pre");
  if (!pre_key)
    fail(Status::unsupported, file.name() + ": tokenizer.ggml.pre is missing; the gpt2 vocabulary needs a known "
                                            "pre-tokenizer (supported: smollm, llama-bpe, llama3, llama-v3, qwen2)");
  const std::string pre(*pre_key);
  const auto patterns = PreTokenizer::patterns_for(pre);
  if (patterns.empty())
    fail(Status::unsupported, file.name() + ": tokenizer.ggml.pre '" + pre +
                                  "' is not supported (supported: smollm, llama-bpe, llama3, llama-v3, qwen2)");
  pre_ = std::make_unique<PreTokenizer>(patterns);
  ignore_merges_ = pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
  add_bos_ = ignore_merges_;  // llama.cpp's default for the Llama 3 pre-tokenizer; the key overrides

  const auto merges = file.get_string_array("tokenizer.ggml.merges");
  if (!merges) fail(Status::format, file.name() + ": tokenizer.ggml.merges is missing (required for a gpt2 vocabulary)");
  merges_.reserve(merges->size() * 2);
  for (size_t r = 0; r < merges->size(); ++r) {
    const std::string_view m = (*merges)[r];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    if (sp == std::string_view::npos)
      fail(Status::format, file.name() + ": tokenizer.ggml.merges[" + std::to_string(r) + "] is not 'left right'");
    const std::string_view l = m.substr(0, sp), rt = m.substr(sp + 1);
    auto find_id = [&](std::string_view s, const char* what) {
      const auto it = index_.find(s);
      if (it == index_.end())
        fail(Status::format, file.name() + ": tokenizer.ggml.merges[" + std::to_string(r) + "] ('" + std::string(m) +
                                 "'): " + what + " is not a token");
      return it->second;
    };
    const int32_t li = find_id(l, "left part"), ri = find_id(rt, "right part");
    std::string joined;
    joined.reserve(l.size() + rt.size());
    joined.append(l).append(rt);
    const int32_t res = find_id(joined, "merged result");
    merges_.emplace(uint64_t(uint32_t(li)) << 32 | uint32_t(ri), std::make_pair(int32_t(r), res));
  }

  byte_token_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    const auto it = index_.find(byte_to_unicode(uint8_t(b)));
    if (it != index_.end()) byte_token_[b] = it->second;
  }
  decoded_.resize(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) {
    if (types_[i] != TokenType::normal) continue;
    const std::string& p = pieces_[i];
    std::string& d = decoded_[i];
    for (size_t k = 0; k < p.size();) {
      const utf8::Scan sc = utf8::scan(p, k);
      const int b = sc.kind == utf8::Scan::valid ? byte_from_unicode(sc.cp) : -1;
      if (b >= 0) d += char(b);
      else d.append(p, k, sc.len);  // not a mapped character: keep it as it is
      k += sc.len;
    }
  }
  specials_.init(pieces_, types_);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    std::string mapped;
    for (char c : word) mapped += byte_to_unicode(uint8_t(c));
    const auto it = index_.find(mapped);
    if (it != index_.end()) { out.push_back(it->second); return; }
  }
  struct Sym {
    int32_t id, prev, next;
    uint32_t begin, len;  // byte range in word
  };
  const int n = int(word.size());
  std::vector<Sym> syms(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    syms[size_t(i)] = {byte_token_[uint8_t(word[size_t(i)])], i - 1, i + 1 < n ? i + 1 : -1, uint32_t(i), 1};

  struct Bigram {
    int32_t rank, left, right, lid, rid;
    bool operator<(const Bigram& o) const {  // priority_queue: top = lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Bigram> queue;
  auto add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const int32_t lid = syms[size_t(l)].id, rid = syms[size_t(r)].id;
    if (lid < 0 || rid < 0) return;
    const auto it = merges_.find(uint64_t(uint32_t(lid)) << 32 | uint32_t(rid));
    if (it == merges_.end()) return;
    queue.push({it->second.first, l, r, lid, rid});
  };
  for (int i = 1; i < n; ++i) add(i - 1, i);
  while (!queue.empty()) {
    const Bigram bg = queue.top();
    queue.pop();
    Sym& L = syms[size_t(bg.left)];
    Sym& R = syms[size_t(bg.right)];
    if (L.len == 0 || R.len == 0 || L.id != bg.lid || R.id != bg.rid || L.next != bg.right) continue;  // stale
    L.id = merges_.at(uint64_t(uint32_t(bg.lid)) << 32 | uint32_t(bg.rid)).second;
    L.len += R.len;
    R.len = 0;
    L.next = R.next;
    if (R.next >= 0) syms[size_t(R.next)].prev = bg.left;
    add(L.prev, bg.left);
    add(bg.left, L.next);
  }
  for (int i = 0; i < n && i >= 0; i = syms[size_t(i)].next) {
    const Sym& s = syms[size_t(i)];
    if (s.id >= 0) { out.push_back(s.id); continue; }
    // A byte whose mapped character is not in the vocabulary: like llama.cpp, try the single
    // bytes of its mapped text (normally none exist, so nothing is emitted).
    for (char c : byte_to_unicode(uint8_t(word[s.begin]))) {
      const auto it = index_.find(std::string_view(&c, 1));
      if (it != index_.end()) out.push_back(it->second);
    }
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;  // word -> range in out
  std::deque<std::string> repaired;  // keeps repaired fragments alive for the cache keys
  for (const Fragment& f : specials_.split(text, parse_special)) {
    if (f.token >= 0) { out.push_back(f.token); continue; }
    std::string_view frag = f.text;
    if (!utf8::is_valid(frag)) {
      // Invalid bytes stay bytes (the pre-tokenizer sees them as U+FFFD) unless the vocabulary
      // has no token for that byte: then they become U+FFFD, which is what llama.cpp encodes.
      std::string fixed;
      fixed.reserve(frag.size() + 8);
      for (size_t i = 0; i < frag.size();) {
        const utf8::Scan sc = utf8::scan(frag, i);
        if (sc.kind == utf8::Scan::valid) { fixed.append(frag, i, sc.len); i += sc.len; continue; }
        if (byte_token_[uint8_t(frag[i])] >= 0) fixed += frag[i];
        else fixed.append(utf8::kReplacement);
        ++i;
      }
      frag = repaired.emplace_back(std::move(fixed));
    }
    for (const auto& [b, e] : pre_->split(frag)) {
      const std::string_view w = frag.substr(b, e - b);
      const auto it = cache.find(w);
      if (it != cache.end()) {
        const auto [cb, cn] = it->second;
        for (uint32_t k = 0; k < cn; ++k) {
          const int32_t id = out[cb + k];
          out.push_back(id);
        }
        continue;
      }
      const size_t before = out.size();
      encode_word(w, out);
      if (w.size() <= 256) cache.emplace(w, std::make_pair(uint32_t(before), uint32_t(out.size() - before)));
    }
  }
  return out;
}

std::string BpeTokenizer::token_bytes(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab())
    fail(Status::invalid_arg, "token id " + std::to_string(id) + " is out of range (vocabulary has " +
                                  std::to_string(n_vocab()) + " tokens)");
  switch (types_[size_t(id)]) {
    case TokenType::normal: return decoded_[size_t(id)];
    case TokenType::user_defined: return pieces_[size_t(id)];
    case TokenType::control:
    case TokenType::unknown: return render_special ? pieces_[size_t(id)] : std::string();
    default: return {};
  }
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id, render_special);
  return out;
}

}  // namespace ts::tok
