#include "engine/chat.hpp"

#include <algorithm>

#include "tokenizer/tokenizer.hpp"

namespace ts {

Chat::Chat(Session& session, ChatTemplate tmpl, std::string system_prompt) : s_(session), tmpl_(std::move(tmpl)) {
  if (system_prompt.empty()) system_prompt = tmpl_.default_system();
  if (!system_prompt.empty()) messages_.push_back({"system", std::move(system_prompt)});
}

std::vector<int32_t> Chat::prompt_tokens(const std::string& user_message) const {
  std::vector<ChatMessage> msgs = messages_;
  msgs.push_back({"user", user_message});
  const Tokenizer& tok = s_.model().tokenizer();
  std::vector<int32_t> ids;
  if (tok.add_bos() && tok.bos() >= 0) ids.push_back(tok.bos());
  std::vector<int32_t> body = tok.encode(tmpl_.render(msgs, true), /*parse_special=*/true);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

GenerateResult Chat::ask(const std::string& user_message, const GenerateOptions& opts, const PieceFn& on_piece,
                         const ProgressFn& progress) {
  const std::vector<int32_t> prompt = prompt_tokens(user_message);
  // Reuse the cached prefix; at least the last prompt token is run again to get its logits.
  const std::vector<int32_t>& cached = s_.tokens();
  size_t common = std::mismatch(cached.begin(), cached.end(), prompt.begin(), prompt.end()).first - cached.begin();
  common = std::min(common, prompt.size() - 1);
  s_.truncate(int64_t(common));
  s_.prefill(std::span<const int32_t>(prompt).subspan(common), progress);

  GenerateOptions o = opts;
  for (const std::string& s : tmpl_.stop_strings())
    if (std::find(o.stop.begin(), o.stop.end(), s) == o.stop.end()) o.stop.push_back(s);
  GenerateResult r = s_.generate(o, on_piece);
  messages_.push_back({"user", user_message});
  messages_.push_back({"assistant", r.text});
  return r;
}

}  // namespace ts
