// Session state files: a loaded session continues exactly like the saved one; bad files are
// refused before the session changes.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/session_state.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

std::shared_ptr<const Model> tiny(const char* name) { return Model::load(std::string(TS_TEST_DATA) + "/models/" + name); }

SessionOptions select_session() {
  SessionOptions o;
  o.n_ctx = 1024;
  o.n_threads = 1;
  o.chunk = 16;
  o.select.n_init = 4, o.select.n_local = 16, o.select.k = 8;  // selection active past 28 tokens
  return o;
}

std::vector<int32_t> prompt(int n) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(10 + (i * 37) % 200);
  return t;
}

std::string temp_path(const char* name) { return (std::filesystem::temp_directory_path() / name).string(); }

TEST(SessionState, LoadedSessionContinuesIdentically) {
  auto m = tiny("tiny-qwen2.gguf");
  Session a(m, select_session());
  a.prefill(prompt(100));
  const std::string path = temp_path("ts_state_roundtrip.bin");
  SessionState::save(a, "extra-bytes", path);
  GenerateOptions g;
  g.max_tokens = 10;
  const GenerateResult ra = a.generate(g);

  Session b(m, select_session());
  std::string extra;
  SessionState::load(b, path, [&](const std::string& e) { extra = e; });
  EXPECT_EQ(extra, "extra-bytes");
  EXPECT_EQ(b.tokens(), prompt(100));
  EXPECT_EQ(b.generate(g).tokens, ra.tokens);
  std::remove(path.c_str());
}

TEST(SessionState, F32KeysRoundTripAndAreNotMixedWithFp16) {
  auto m = tiny("tiny-qwen2.gguf");
  SessionOptions o = select_session();
  o.keys = KeyPrecision::f32;
  Session a(m, o);
  a.prefill(prompt(60));
  const std::string path = temp_path("ts_state_f32.bin");
  SessionState::save(a, "", path);
  GenerateOptions g;
  g.max_tokens = 6;
  const GenerateResult ra = a.generate(g);
  Session b(m, o);
  SessionState::load(b, path, {});
  EXPECT_EQ(b.generate(g).tokens, ra.tokens);
  Session c(m, select_session());  // fp16 keys
  c.prefill(prompt(5));
  try {
    SessionState::load(c, path, {});
    ADD_FAILURE() << "loaded f32 keys into an fp16 cache";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_arg);
    EXPECT_NE(std::string(e.what()).find("f32 keys"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.tokens(), prompt(5));
  std::remove(path.c_str());
}

TEST(SessionState, BadFilesLeaveTheSessionUnchanged) {
  auto m = tiny("tiny-qwen2.gguf");
  Session a(m, select_session());
  a.prefill(prompt(50));
  const std::string path = temp_path("ts_state_bad.bin");
  SessionState::save(a, "", path);
  Session b(m, select_session());
  b.prefill(prompt(7));
  auto expect_refused = [&](Status want) {
    try {
      SessionState::load(b, path, {});
      ADD_FAILURE() << "loaded a bad file";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), want) << e.what();
    }
    EXPECT_EQ(b.tokens(), prompt(7));
  };
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 100);  // truncated
  expect_refused(Status::format);
  std::ofstream(path, std::ios::binary) << "not a state file at all, but long enough to hold a header........";
  expect_refused(Status::format);

  Session c(tiny("tiny-llama-spm.gguf"), select_session());  // another model
  c.prefill(prompt(20));
  SessionState::save(c, "", path);
  expect_refused(Status::invalid_arg);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ts
