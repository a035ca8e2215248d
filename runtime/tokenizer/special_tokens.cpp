// Splitting text on special-token strings (llama.cpp's tokenizer_st_partition semantics).
#include <algorithm>

#include "tokenizer/tokenizer_impl.hpp"

namespace ts::tok {

void SpecialSplitter::init(const std::vector<std::string>& pieces, const std::vector<TokenType>& types) {
  cands_.clear();
  for (size_t i = 0; i < pieces.size(); ++i) {
    const TokenType t = types[i];
    if (pieces[i].empty()) continue;
    if (t == TokenType::control || t == TokenType::unknown || t == TokenType::user_defined)
      cands_.push_back({pieces[i], int32_t(i), t == TokenType::user_defined});
  }
  std::stable_sort(cands_.begin(), cands_.end(),
                   [](const Cand& a, const Cand& b) { return a.text.size() > b.text.size(); });
}

std::vector<Fragment> SpecialSplitter::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({text, -1});
  std::vector<Fragment> next;
  for (const Cand& c : cands_) {
    if (!parse_special && !c.always) continue;
    bool any = false;
    for (const Fragment& f : frags) {
      if (f.token < 0 && f.text.find(c.text) != std::string_view::npos) { any = true; break; }
    }
    if (!any) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) { next.push_back(f); continue; }
      std::string_view rest = f.text;
      for (;;) {
        const size_t pos = rest.find(c.text);
        if (pos == std::string_view::npos) break;
        if (pos > 0) next.push_back({rest.substr(0, pos), -1});
        next.push_back({std::string_view(rest.data() + pos, c.text.size()), c.id});
        rest.remove_prefix(pos + c.text.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace ts::tok
