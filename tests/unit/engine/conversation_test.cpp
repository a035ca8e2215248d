// Conversation on tiny random-weight models: documents' token positions and byte offsets,
// cached-prefix reuse, and pull-style generation against the callback style.
#include <gtest/gtest.h>

#include "engine/conversation.hpp"
#include "engine/generation.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

std::shared_ptr<const Model> tiny(const char* name) { return Model::load(std::string(TS_TEST_DATA) + "/models/" + name); }

SessionOptions small_session() {
  SessionOptions o;
  o.n_ctx = 1024;
  o.n_threads = 1;
  o.select.mode = AttentionMode::full;
  return o;
}

const char* kDoc = "Grass is green.\nThe pass key is 12345, remember it. Skies are blue; suns are yellow. ";

// The tokens of a placed document, read back through their byte offsets, give its text.
void expect_offsets_cover_text(const char* model_name) {
  auto m = tiny(model_name);
  Session s(m, small_session());
  Conversation c(ChatTemplate::from_model(m->tokenizer().chat_template()), "");
  const int32_t d0 = c.add_document("a", "Hello there, this is the first document.");
  const int32_t d1 = c.add_document("b", kDoc);
  c.add_message("user", "What is the pass key?");
  c.prefill(s, {});
  for (int32_t id : {d0, d1}) {
    const ConversationDocument& d = c.documents()[size_t(id)];
    SCOPED_TRACE(d.title);
    ASSERT_GE(d.first_position, 0);
    ASSERT_FALSE(d.offsets.empty());
    EXPECT_EQ(d.offsets.front(), 0u);
    EXPECT_TRUE(std::is_sorted(d.offsets.begin(), d.offsets.end()));
    EXPECT_LT(d.offsets.back(), d.text.size());
    // Each token's bytes are the text between its offset and the next token's.
    const Tokenizer& tok = m->tokenizer();
    for (size_t i = 0; i + 1 < d.offsets.size(); ++i) {
      std::string piece = tok.token_bytes(s.tokens()[size_t(d.first_position) + i], true);
      std::string text = d.text.substr(d.offsets[i], d.offsets[i + 1] - d.offsets[i]);
      if (piece.size() == text.size() + 1 && piece[0] == ' ') piece.erase(0, 1);  // SentencePiece's prefix space
      EXPECT_EQ(piece, text) << "token " << i;
    }
  }
}

TEST(Conversation, DocumentOffsetsMatchTheTokensBpe) { expect_offsets_cover_text("tiny-qwen2.gguf"); }
TEST(Conversation, DocumentOffsetsMatchTheTokensSentencePiece) { expect_offsets_cover_text("tiny-llama-spm.gguf"); }

TEST(Conversation, ReusesTheCachedPrefixAndReadsDocumentsAhead) {
  auto m = tiny("tiny-qwen2.gguf");
  Session s(m, small_session());
  Conversation c(ChatTemplate::from_model(m->tokenizer().chat_template()), "");
  c.add_document("doc", kDoc);
  EXPECT_FALSE(c.ready_to_answer());
  c.prefill(s, {});  // the document alone, before the question exists
  const int64_t doc_tokens = int64_t(s.tokens().size());
  EXPECT_GE(c.documents()[0].first_position, 0);
  c.add_message("user", "What is the pass key?");
  EXPECT_TRUE(c.ready_to_answer());
  s.reset_stats();
  c.prefill(s, {});
  EXPECT_EQ(s.tokens(), c.prompt_tokens(m->tokenizer()));
  EXPECT_LT(s.stats().prefill_tokens, int64_t(s.tokens().size()) - doc_tokens + 8);  // only the new part ran
}

TEST(Conversation, RejectsBadTextAndMisplacedSystemMessages) {
  auto m = tiny("tiny-qwen2.gguf");
  Conversation c(ChatTemplate::from_model(m->tokenizer().chat_template()), "be brief");
  EXPECT_THROW(c.add_document("bin", std::string("ab\0cd", 5)), Error);
  EXPECT_THROW(c.add_message("user", "bad \xC3"), Error);
  EXPECT_THROW(c.add_message("system", "late"), Error);
  EXPECT_THROW(c.add_message("robot", "hi"), Error);
}

TEST(Generation, PullStepsGiveTheSameAnswerAsTheCallback) {
  auto m = tiny("tiny-qwen2.gguf");
  GenerateOptions o;
  o.max_tokens = 12;
  o.stop = {"zz"};
  auto answer = [&](bool pull) {
    Session s(m, small_session());
    Conversation c(ChatTemplate::from_model(m->tokenizer().chat_template()), "");
    c.add_message("user", "Say something.");
    c.prefill(s, {});
    if (!pull) return s.generate(o).text;
    Generation g(s, o);
    std::string text;
    while (!g.done()) text += g.next().piece;
    EXPECT_EQ(text, g.result().text);
    return text;
  };
  EXPECT_EQ(answer(true), answer(false));
}

}  // namespace
}  // namespace ts
