// Chat formats: recognised from the template source (never executed) and rendered natively.
#include "tokenizer/chat_template.hpp"

#include <string>

#include "util/error.hpp"

namespace ts {
namespace {

std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

// Finds a string literal in a ChatML template of the form
//   '<|im_start|>system\n<TEXT><|im_end|>\n'   (or with "..." quotes, or real newlines)
// and returns TEXT with the Jinja/Python escapes \n \t \' \" \\ resolved. TEXT must be a plain
// literal (no quote, no expression), so a template that only formats messages[0]['content']
// yields nothing.
std::string chatml_default_system(std::string_view src) {
  static constexpr std::string_view kHead = "<|im_start|>system";
  static constexpr std::string_view kEnd = "<|im_end|>";
  for (size_t at = src.find(kHead); at != std::string_view::npos; at = src.find(kHead, at + 1)) {
    if (at == 0) continue;
    const char quote = src[at - 1];
    if (quote != '\'' && quote != '"') continue;
    size_t p = at + kHead.size();
    if (src.compare(p, 2, "\\n") == 0) p += 2;
    else if (p < src.size() && src[p] == '\n') p += 1;
    else continue;
    std::string text;
    bool ok = false;
    while (p < src.size()) {
      const char c = src[p];
      if (c == quote) break;  // literal ended before <|im_end|>
      if (src.compare(p, kEnd.size(), kEnd) == 0) { ok = true; break; }
      if (c == '\\' && p + 1 < src.size()) {
        const char e = src[p + 1];
        text += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        p += 2;
        continue;
      }
      text += c;
      ++p;
    }
    if (ok && !text.empty()) return text;
  }
  return {};
}

}  // namespace

std::optional<ChatFormat> chat_format_from_name(std::string_view name) {
  if (name == "chatml") return ChatFormat::chatml;
  if (name == "llama3") return ChatFormat::llama3;
  if (name == "llama2" || name == "mistral") return ChatFormat::llama2;
  return std::nullopt;
}

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::chatml: return "chatml";
    case ChatFormat::llama3: return "llama3";
    case ChatFormat::llama2: return "llama2";
  }
  return "unknown";
}

ChatTemplate ChatTemplate::from_model(std::string_view src, std::string_view override_name) {
  std::optional<ChatFormat> f;
  if (!override_name.empty()) {
    f = chat_format_from_name(override_name);
    if (!f)
      fail(Status::invalid_arg, "unknown chat format '" + std::string(override_name) +
                                    "' (known: chatml, llama3, llama2)");
  } else if (src.find("<|im_start|>") != std::string_view::npos) {
    f = ChatFormat::chatml;
  } else if (src.find("<|start_header_id|>") != std::string_view::npos) {
    f = ChatFormat::llama3;
  } else if (src.find("[INST]") != std::string_view::npos) {
    f = ChatFormat::llama2;
  } else if (src.empty()) {
    fail(Status::unsupported, "the model has no chat template; choose a chat format (chatml, llama3, llama2)");
  } else {
    fail(Status::unsupported, "unrecognised chat template (not ChatML, Llama 3 or Llama 2); choose a chat format "
                              "(chatml, llama3, llama2)");
  }
  std::string sys;
  if (*f == ChatFormat::chatml && src.find("<|im_start|>") != std::string_view::npos) sys = chatml_default_system(src);
  return ChatTemplate(*f, std::move(sys));
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  std::string out;
  switch (format_) {
    case ChatFormat::chatml: {
      if (!default_system_.empty() && (messages.empty() || messages[0].role != "system"))
        out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
      for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    }
    case ChatFormat::llama3: {
      for (const ChatMessage& m : messages)
      {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
        out += trim(m.content);
        out += "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
    case ChatFormat::llama2: {
      // <s>[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
      // The very first <s> is the caller's BOS id and is not written.
      std::string system;
      bool first_turn = true, open = false;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          if (!system.empty()) system += "\n";
          system += trim(m.content);
        } else if (m.role == "user") {
          if (open) out += " [/INST]";  // two user messages in a row: close the previous one
          if (!first_turn) out += "<s>";
          out += "[INST] ";
          if (!system.empty()) {
            out += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
            system.clear();
          }
          out += trim(m.content);
          open = true;
          first_turn = false;
        } else {  // assistant
          if (open) out += " [/INST]";
          out += ' ';
          out += trim(m.content);
          out += " </s>";
          open = false;
          first_turn = false;
        }
      }
      if (open) out += " [/INST]";
      break;  // the generation prompt is the open [INST] block itself
    }
  }
  return out;
}

std::vector<std::string> ChatTemplate::stop_strings() const {
  switch (format_) {
    case ChatFormat::chatml: return {"<|im_end|>", "<|im_start|>", "<|endoftext|>"};
    case ChatFormat::llama3: return {"<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>"};
    case ChatFormat::llama2: return {"</s>", "[INST]"};
  }
  return {};
}

}  // namespace ts
