// Chat formats recognised from tokenizer.chat_template. The template string is only matched
// against known families, never executed.
//
// BOS: render() never writes the sequence's leading BOS text (<|begin_of_text|>, <s>); the
// caller prepends tokenizer.bos() when tokenizer.add_bos() is true, then appends
// encode(render(...), parse_special = true). Later BOS markers inside the conversation
// (Llama 2's "</s><s>[INST]") are written as text and become the BOS id through parse_special.
//   chatml: [default system]<|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
//   llama3: <|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|> ...
//           [<|start_header_id|>assistant<|end_header_id|>\n\n]
//   llama2: [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
//           (contents trimmed; the open "[/INST]" is the generation prompt)
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ts {

enum class ChatFormat { chatml, llama3, llama2 };

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

std::optional<ChatFormat> chat_format_from_name(std::string_view name);  // "chatml", "llama3", "llama2" ("mistral" = llama2)
const char* chat_format_name(ChatFormat f);

class ChatTemplate {
 public:
  // Recognise the family of a model's template; `override_name` (non-empty) wins.
  // Throws ts::Error(unsupported) for an unrecognised or empty template with no override, and
  // ts::Error(invalid_arg) for an unknown override name.
  static ChatTemplate from_model(std::string_view template_source, std::string_view override_name = {});
  explicit ChatTemplate(ChatFormat f, std::string default_system = {})
      : format_(f), default_system_(std::move(default_system)) {}

  ChatFormat format() const { return format_; }
  // A system prompt the model's own template inserts when the conversation has none (SmolLM2,
  // Qwen2): taken from a ChatML string literal '<|im_start|>system\n...<|im_end|>' (escapes
  // \n, \t, \', \" resolved). render() inserts it when the first message is not "system".
  const std::string& default_system() const { return default_system_; }
  // Render messages as prompt text containing special-token strings (encode with parse_special).
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  // Texts that end an assistant turn in this format (in addition to end-of-generation tokens).
  std::vector<std::string> stop_strings() const;

 private:
  ChatFormat format_;
  std::string default_system_;
};

}  // namespace ts
