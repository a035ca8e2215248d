#include "engine/conversation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/utf8.hpp"

namespace ts {
namespace {

void check_text(std::string_view what, std::string_view text) {
  if (auto bad = find_invalid_utf8(text))
    fail(Status::invalid_arg, fmt::format("{}: invalid UTF-8 at byte offset {}", what, *bad));
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail(Status::invalid_arg, fmt::format("{}: NUL byte at offset {} (binary data?)", what, nul));
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

}  // namespace

// The prompt text, its tokens, where each token starts in the text, and where each placed
// document's text starts (may be before the token that holds its first kept byte when the
// template trimmed leading whitespace).
struct Conversation::Rendered {
  std::vector<int32_t> tokens;
  std::vector<int64_t> token_start;  // byte offset in the text; BOS gets 0
  int64_t text_size = 0;
  std::vector<std::pair<int32_t, int64_t>> doc_starts;  // (document id, start in text)
};

Conversation::Conversation(ChatTemplate tmpl, std::string system_prompt)
    : tmpl_(std::move(tmpl)), system_prompt_(std::move(system_prompt)) {
  reset();
}

void Conversation::reset() {
  messages_.clear();
  documents_.clear();
  pending_.clear();
  const std::string& sys = system_prompt_.empty() ? tmpl_.default_system() : system_prompt_;
  if (!sys.empty()) messages_.push_back({"system", sys, {}});
}

int32_t Conversation::add_document(std::string title, std::string text) {
  check_text("document", text);
  check_text("document title", title);
  documents_.push_back({std::move(title), std::move(text), -1, {}});
  pending_.push_back(int32_t(documents_.size() - 1));
  return int32_t(documents_.size() - 1);
}

void Conversation::add_message(const std::string& role, std::string text) {
  check_text("message", text);
  if (role == "system" && !messages_.empty())
    fail(Status::invalid_arg, "add_message: a system message must be the first message");
  if (role != "system" && role != "user" && role != "assistant")
    fail(Status::invalid_arg, fmt::format("add_message: unknown role '{}'", role));
  ConversationMessage m{role, std::move(text), {}};
  if (role == "user") m.documents = std::exchange(pending_, {});
  messages_.push_back(std::move(m));
}

void Conversation::truncate_messages(size_t n) {
  if (n > messages_.size())
    fail(Status::invalid_arg, fmt::format("truncate_messages: {} is more than the {} messages", n, messages_.size()));
  for (size_t i = n; i < messages_.size(); ++i)
    for (int32_t d : messages_[i].documents) documents_[size_t(d)].first_position = -1;
  messages_.resize(n);
}

std::string Conversation::message_content(const ConversationMessage& m) const {
  std::string s;
  for (int32_t d : m.documents) {
    s += documents_[size_t(d)].text;
    if (!s.empty() && s.back() != '\n') s += '\n';
    s += '\n';
  }
  return s + m.text;
}

bool Conversation::ready_to_answer() const {
  return pending_.empty() && !messages_.empty() && messages_.back().role == "user";
}

Conversation::Rendered Conversation::render(const Tokenizer& tok) const {
  std::vector<ChatMessage> msgs;
  std::vector<std::vector<int32_t>> docs_of;  // per rendered message
  for (const ConversationMessage& m : messages_) {
    msgs.push_back({m.role, message_content(m)});
    docs_of.push_back(m.documents);
  }
  const bool open_docs = !pending_.empty();
  if (open_docs) {
    ConversationMessage open{"user", "", pending_};
    msgs.push_back({"user", message_content(open)});
    docs_of.push_back(pending_);
  }
  const bool gen_prompt = !open_docs && !messages_.empty() && messages_.back().role == "user";
  std::string text = tmpl_.render(msgs, gen_prompt);

  Rendered r;
  // Find each document's text in order (the template may have trimmed its outer whitespace).
  size_t cursor = 0;
  for (const auto& ids : docs_of)
    for (int32_t d : ids) {
      const std::string& t = documents_[size_t(d)].text;
      size_t lead = 0, end = t.size();
      while (lead < end && is_space(t[lead])) ++lead;
      while (end > lead && is_space(t[end - 1])) --end;
      const size_t at = text.find(std::string_view(t).substr(lead, end - lead), cursor);
      if (at == std::string::npos) continue;
      r.doc_starts.emplace_back(d, int64_t(at) - int64_t(lead));
      cursor = at + (end - lead);
    }
  if (open_docs) text.resize(cursor);  // the open message stops after its documents

  if (tok.add_bos() && tok.bos() >= 0) {
    r.tokens.push_back(tok.bos());
    r.token_start.push_back(0);
  }
  const std::vector<int32_t> body = tok.encode(text, /*parse_special=*/true);
  int64_t at = 0;
  for (int32_t id : body) {
    const std::string piece = tok.token_bytes(id, /*render_special=*/true);
    int64_t n = int64_t(piece.size());
    // SentencePiece adds a space before each text fragment that the text itself lacks.
    if (n > 0 && piece[0] == ' ' && (at >= int64_t(text.size()) || text[size_t(at)] != ' ')) --n;
    r.tokens.push_back(id);
    r.token_start.push_back(std::min<int64_t>(at, int64_t(text.size())));
    at += n;
  }
  r.text_size = int64_t(text.size());
  return r;
}

std::vector<int32_t> Conversation::prompt_tokens(const Tokenizer& tok) const { return render(tok).tokens; }

void Conversation::prefill(Session& s, const ProgressFn& progress) {
  const Rendered r = render(s.model().tokenizer());
  if (r.tokens.empty()) return;
  if (int64_t(r.tokens.size()) > s.n_ctx())
    fail(Status::context_full, fmt::format("the prompt is {} tokens but the context holds {}", r.tokens.size(), s.n_ctx()));
  // Reuse the cached prefix; at least the last prompt token runs again to give its logits.
  const std::vector<int32_t>& cached = s.tokens();
  size_t common = size_t(std::mismatch(cached.begin(), cached.end(), r.tokens.begin(), r.tokens.end()).first - cached.begin());
  // Nothing new and the logits still there: running the last token again alone would change
  // its logits slightly (a chunk of one instead of its own chunk), so don't.
  if (!(common == r.tokens.size() && cached.size() == common && s.logits())) {
    common = std::min(common, r.tokens.size() - 1);
    s.truncate(int64_t(common));
    s.prefill(std::span<const int32_t>(r.tokens).subspan(common), progress);
  }

  for (ConversationDocument& d : documents_) d.first_position = -1;
  const int64_t n = int64_t(r.tokens.size());
  for (const auto& [id, start] : r.doc_starts) {
    ConversationDocument& d = documents_[size_t(id)];
    const int64_t len = int64_t(d.text.size());
    d.offsets.clear();
    // The document's tokens: from the first non-empty token ending inside it to the last one
    // starting inside it.
    auto end_of = [&](int64_t i) { return i + 1 < n ? r.token_start[size_t(i + 1)] : r.text_size; };
    int64_t first = 0;
    while (first < n && (end_of(first) <= start || end_of(first) == r.token_start[size_t(first)])) ++first;
    if (first >= n || r.token_start[size_t(first)] >= start + len) continue;
    d.first_position = first;
    for (int64_t i = first; i < n && r.token_start[size_t(i)] < start + len; ++i)
      d.offsets.push_back(uint64_t(std::clamp<int64_t>(r.token_start[size_t(i)] - start, 0, len)));
  }
}

nlohmann::json Conversation::to_json() const {
  nlohmann::json msgs = nlohmann::json::array(), docs = nlohmann::json::array();
  for (const ConversationMessage& m : messages_)
    msgs.push_back({{"role", m.role}, {"text", m.text}, {"documents", m.documents}});
  for (const ConversationDocument& d : documents_)
    docs.push_back({{"title", d.title}, {"text", d.text}, {"first_position", d.first_position}, {"offsets", d.offsets}});
  return {{"messages", msgs}, {"documents", docs}, {"pending", pending_}};
}

void Conversation::from_json(const nlohmann::json& j) {
  try {
    std::vector<ConversationMessage> msgs;
    std::vector<ConversationDocument> docs;
    for (const auto& d : j.at("documents"))
      docs.push_back({d.at("title").get<std::string>(), d.at("text").get<std::string>(),
                      d.at("first_position").get<int64_t>(), d.at("offsets").get<std::vector<uint64_t>>()});
    auto check_ids = [&](const std::vector<int32_t>& ids) {
      for (int32_t id : ids)
        if (id < 0 || size_t(id) >= docs.size()) fail(Status::format, "conversation: document id out of range");
      return ids;
    };
    for (const auto& m : j.at("messages"))
      msgs.push_back({m.at("role").get<std::string>(), m.at("text").get<std::string>(),
                      check_ids(m.at("documents").get<std::vector<int32_t>>())});
    std::vector<int32_t> pending = check_ids(j.at("pending").get<std::vector<int32_t>>());
    messages_ = std::move(msgs);
    documents_ = std::move(docs);
    pending_ = std::move(pending);
  } catch (const nlohmann::json::exception& e) {
    fail(Status::format, fmt::format("conversation: {}", e.what()));
  }
}

}  // namespace ts
