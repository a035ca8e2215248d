// The reader on real files: the default model (skipped when absent) and the fuzz seeds, which
// were written by the independent `gguf` Python package (tests/fuzz/make_gguf_seeds.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "gguf/gguf_file.hpp"
#include "util/error.hpp"

namespace ts::test {
namespace {

namespace fs = std::filesystem;

// TS_TEST_MODEL overrides the default model path (handy before assets/ is populated).
std::string model_path() {
  if (const char* env = std::getenv("TS_TEST_MODEL")) return env;
  return TS_DEFAULT_MODEL;
}

TEST(GgufModel, DefaultModelParses) {
  const std::string path = model_path();
  if (!fs::exists(path)) GTEST_SKIP() << "no model at " << path;
  const auto f = gguf::File::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 272u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_u64("llama.block_count"), 30u);
  EXPECT_EQ(f->get_u64("llama.embedding_length"), 576u);
  EXPECT_EQ(f->get_u64("llama.attention.head_count"), 9u);
  EXPECT_EQ(f->get_u64("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(f->get_u64("llama.vocab_size"), 49152u);
  EXPECT_FLOAT_EQ(float(*f->get_f64("llama.rope.freq_base")), 100000.0f);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_bool("tokenizer.ggml.add_bos_token"), false);

  const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens);
  ASSERT_EQ(tokens->size(), 49152u);
  EXPECT_EQ((*tokens)[1], "<|im_start|>");
  EXPECT_EQ((*tokens)[2], "<|im_end|>");
  EXPECT_EQ(f->get_i32_array("tokenizer.ggml.token_type")->size(), 49152u);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.merges")->size(), 48900u);

  const gguf::TensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, GgmlType::Q8_0);
  EXPECT_EQ(emb->ne[0], 576);
  EXPECT_EQ(emb->ne[1], 49152);
  EXPECT_EQ(emb->nbytes, 576u / 32 * 34 * 49152);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);  // tied embeddings
  const gguf::TensorInfo* q = f->find_tensor("blk.29.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::Q4_1);
  EXPECT_EQ(f->find_tensor("blk.0.attn_norm.weight")->type, GgmlType::F32);
  for (const auto& t : f->tensors()) {
    EXPECT_EQ(t.data, f->bytes().data() + f->data_offset() + t.offset) << t.name;
    EXPECT_LE(t.data + t.nbytes, f->bytes().data() + f->bytes().size()) << t.name;
  }
}

// Seeds named valid_* must parse; the others are deliberately broken and must not.
TEST(GgufModel, PythonWrittenSeeds) {
  const fs::path dir = fs::path(TS_TEST_DATA) / ".." / "fuzz" / "corpus" / "gguf";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no seeds in " << dir;
  int n_valid = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("valid_", 0) == 0) {
      EXPECT_NO_THROW(gguf::File::open(entry.path().string())) << name;
      ++n_valid;
    } else {
      EXPECT_THROW(gguf::File::open(entry.path().string()), Error) << name;
    }
  }
  EXPECT_GT(n_valid, 0);
}

}  // namespace
}  // namespace ts::test
