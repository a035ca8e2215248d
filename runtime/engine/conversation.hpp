// A conversation on a Session, as the C API presents it: a system prompt, messages, and whole
// documents placed at the start of the user message that follows them. Renders the model's
// chat format, reuses the cached prefix a new prompt shares with the KV cache, and records where
// each document's tokens sit (cache positions and byte offsets) so a UI can map heatmaps back to
// the text.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "engine/session.hpp"
#include "tokenizer/chat_template.hpp"

namespace ts {

struct ConversationDocument {
  std::string title;
  std::string text;
  int64_t first_position = -1;   // cache position of its first token; -1 until prefilled
  std::vector<uint64_t> offsets;  // per token: byte offset in `text` where the token starts
};

struct ConversationMessage {
  std::string role;  // "system", "user", "assistant"
  std::string text;  // as added, without its documents
  std::vector<int32_t> documents;  // ids placed before the text (user messages)
};

class Conversation {
 public:
  // An empty system prompt means the template's default one (if it has one).
  Conversation(ChatTemplate tmpl, std::string system_prompt);

  // Throws Error(invalid_arg) for text that is not valid UTF-8 or holds a NUL byte, naming the
  // byte offset. Returns the document's id.
  int32_t add_document(std::string title, std::string text);
  // role "system" only as the first message; "user" takes the documents added since the last
  // user message.
  void add_message(const std::string& role, std::string text);
  void truncate_messages(size_t n);  // keeps the first n; their documents stay placed
  void reset();                      // back to the system prompt alone, no documents

  // The prompt for the conversation so far: with the generation prompt when the last message is
  // the user's; documents not yet followed by a user message as the start of an open one.
  std::vector<int32_t> prompt_tokens(const Tokenizer& tok) const;
  // Runs what the session does not already hold of prompt_tokens(); on success updates the
  // documents' positions. Throws Error(context_full) before changing anything when the prompt
  // does not fit, Error(cancelled) on cancel (the cache then holds the shared prefix).
  void prefill(Session& s, const ProgressFn& progress);
  // True when the last message is the user's and no document waits for one.
  bool ready_to_answer() const;
  // The template's turn-ending texts, as stop strings for an answer.
  std::vector<std::string> stop_strings() const { return tmpl_.stop_strings(); }

  const std::vector<ConversationMessage>& messages() const { return messages_; }
  const std::vector<ConversationDocument>& documents() const { return documents_; }
  const ChatTemplate& chat_template() const { return tmpl_; }

  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);  // throws Error(format) for a malformed object

 private:
  struct Rendered;
  Rendered render(const Tokenizer& tok) const;
  std::string message_content(const ConversationMessage& m) const;

  ChatTemplate tmpl_;
  std::string system_prompt_;
  std::vector<ConversationMessage> messages_;
  std::vector<ConversationDocument> documents_;
  std::vector<int32_t> pending_;  // documents waiting for the next user message
};

}  // namespace ts
