// A multi-turn conversation on a Session: renders the model's chat format, reuses the cached
// prefix the new prompt shares with what is already in the KV cache, and generates the reply.
#pragma once
#include <string>
#include <vector>

#include "engine/session.hpp"
#include "tokenizer/chat_template.hpp"

namespace ts {

class Chat {
 public:
  Chat(Session& session, ChatTemplate tmpl, std::string system_prompt = {});

  // Adds the user message, prefills what is new (progress per chunk), generates the reply
  // and records it. On cancel during prefill the message is dropped and Error(cancelled)
  // propagates; a cancelled generation keeps the partial reply.
  GenerateResult ask(const std::string& user_message, const GenerateOptions& opts,
                     const PieceFn& on_piece = {}, const ProgressFn& progress = {});

  // Tokens of the rendered prompt for the conversation so far plus a user message.
  std::vector<int32_t> prompt_tokens(const std::string& user_message) const;

  const std::vector<ChatMessage>& messages() const { return messages_; }
  const ChatTemplate& chat_template() const { return tmpl_; }

 private:
  Session& s_;
  ChatTemplate tmpl_;
  std::vector<ChatMessage> messages_;
};

}  // namespace ts
