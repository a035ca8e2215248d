// Chat template recognition and rendering for ChatML, Llama 3 and Llama 2 / Mistral.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "gguf/gguf_file.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

// SmolLM2-135M-Instruct's template, as stored in its GGUF (real newlines inside the literals).
const char* const kSmolLM2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// The same written with \n escapes inside the Jinja strings (as in tokenizer_config.json).
const char* const kSmolLM2Escaped =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// A ChatML template with no default system prompt (system text only from the messages).
const char* const kPlainChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char* const kQwen25Like =
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
    "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
    "helpful assistant.<|im_end|>\\n' }}{%- endif %}";

const char* const kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

const char* const kLlama2 =
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
    "message['content'] | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
    "message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}";

const std::vector<ChatMessage> kConversation = {
    {"user", "Hi!"}, {"assistant", "Hello. How can I help?"}, {"user", "Tell me a joke."}};

TEST(ChatTemplate, RecognisesFamilies) {
  EXPECT_EQ(ChatTemplate::from_model(kSmolLM2).format(), ChatFormat::chatml);
  EXPECT_EQ(ChatTemplate::from_model(kLlama3).format(), ChatFormat::llama3);
  EXPECT_EQ(ChatTemplate::from_model(kLlama2).format(), ChatFormat::llama2);
  EXPECT_EQ(ChatTemplate::from_model("{{ messages }}", "llama3").format(), ChatFormat::llama3);
  EXPECT_EQ(ChatTemplate::from_model(kSmolLM2, "llama2").format(), ChatFormat::llama2);
  try {
    ChatTemplate::from_model("{% for m in messages %}<start_of_turn>{{ m.content }}{% endfor %}");
    ADD_FAILURE() << "expected unsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::unsupported);
  }
  EXPECT_THROW(ChatTemplate::from_model("", ""), Error);
  EXPECT_THROW(ChatTemplate::from_model(kSmolLM2, "vicuna"), Error);
  EXPECT_EQ(chat_format_from_name("chatml"), ChatFormat::chatml);
  EXPECT_EQ(chat_format_from_name("nope"), std::nullopt);
  EXPECT_STREQ(chat_format_name(ChatFormat::llama3), "llama3");
}

TEST(ChatTemplate, SmolLM2DefaultSystemPrompt) {
  const std::string sys = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
  EXPECT_EQ(ChatTemplate::from_model(kSmolLM2).default_system(), sys);
  EXPECT_EQ(ChatTemplate::from_model(kSmolLM2Escaped).default_system(), sys);
  EXPECT_EQ(ChatTemplate::from_model(kPlainChatML).default_system(), "");
  EXPECT_EQ(ChatTemplate::from_model(kQwen25Like).default_system(),
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
}

TEST(ChatTemplate, ChatMLRender) {
  const auto t = ChatTemplate::from_model(kSmolLM2Escaped);
  EXPECT_EQ(t.render(kConversation, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n"
            "<|im_start|>user\nTell me a joke.<|im_end|>\n"
            "<|im_start|>assistant\n");
  const std::vector<ChatMessage> with_sys = {{"system", "Be brief."}, {"user", "Hi"}};
  EXPECT_EQ(t.render(with_sys, false), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(ChatTemplate(ChatFormat::chatml).render(std::vector<ChatMessage>{{"user", "Hi"}}, true),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.stop_strings().front(), "<|im_end|>");
}

TEST(ChatTemplate, Llama3Render) {
  const auto t = ChatTemplate::from_model(kLlama3);
  EXPECT_EQ(t.default_system(), "");
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "  Hi!\n"}, {"assistant", "Hello."}};
  // No <|begin_of_text|>: the caller adds the BOS id.
  EXPECT_EQ(t.render(msgs, true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t.stop_strings().front(), "<|eot_id|>");
}

TEST(ChatTemplate, Llama2Render) {
  const auto t = ChatTemplate::from_model(kLlama2);
  // The first <s> is the caller's BOS id; later turns carry "<s>" text (a control token).
  EXPECT_EQ(t.render(kConversation, true),
            "[INST] Hi! [/INST] Hello. How can I help? </s><s>[INST] Tell me a joke. [/INST]");
  const std::vector<ChatMessage> with_sys = {{"system", "Be brief."}, {"user", "Hi"}};
  EXPECT_EQ(t.render(with_sys, true), "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  EXPECT_EQ(t.stop_strings().front(), "</s>");
}

// Templates carried by the golden vocabularies and the default model.
TEST(ChatTemplate, FromGgufFiles) {
  const std::string dir = std::string(TS_TEST_DATA) + "/tokenizer/";
  const std::pair<const char*, ChatFormat> files[] = {
      {"qwen2-bpe.gguf", ChatFormat::chatml}, {"llama-bpe.gguf", ChatFormat::llama3}, {"tiny-spm.gguf", ChatFormat::llama2}};
  for (const auto& [name, fmt] : files) {
    auto f = gguf::File::open(dir + name);
    auto tok = Tokenizer::load(*f);
    EXPECT_EQ(ChatTemplate::from_model(tok->chat_template()).format(), fmt) << name;
  }
  EXPECT_EQ(ChatTemplate::from_model(Tokenizer::load(*gguf::File::open(dir + "qwen2-bpe.gguf"))->chat_template())
                .default_system(),
            "You are a helpful assistant.");
  std::string model = TS_DEFAULT_MODEL;
  if (const char* e = std::getenv("TS_MODEL"); e && *e) model = e;
  if (!std::filesystem::exists(model)) return;
  auto tok = Tokenizer::load(*gguf::File::open(model));
  const auto t = ChatTemplate::from_model(tok->chat_template());
  EXPECT_EQ(t.format(), ChatFormat::chatml);
  EXPECT_EQ(t.default_system(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  // The rendered prompt tokenises with <|im_start|> / <|im_end|> as single control tokens.
  const auto ids = tok->encode(t.render(std::vector<ChatMessage>{{"user", "Hi"}}, true), true);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 2);
}

}  // namespace
}  // namespace ts
