// Shared helpers for tests on real model files and llama.cpp goldens.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/session.hpp"
#include "model/model.hpp"

namespace ts::test {

// The default model (TS_MODEL overrides), or "" when it is not present.
inline std::string default_model_path() {
  if (const char* env = std::getenv("TS_MODEL")) return env;
  return std::filesystem::exists(TS_DEFAULT_MODEL) ? TS_DEFAULT_MODEL : "";
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

inline SessionOptions dense_options(int64_t n_ctx, KeyPrecision keys = KeyPrecision::f16) {
  SessionOptions o;
  o.n_ctx = n_ctx;
  o.keys = keys;
  o.n_threads = 2;
  o.device = Device::cpu;  // the CPU suite (tests/cuda/ compares the GPU with it)
  o.select.mode = AttentionMode::full;
  return o;
}

inline int32_t argmax(const float* x, int32_t n) { return int32_t(std::max_element(x, x + n) - x); }

}  // namespace ts::test

#define TS_REQUIRE_DEFAULT_MODEL(path)                                                        \
  const std::string path = ts::test::default_model_path();                                    \
  if (path.empty()) GTEST_SKIP() << "default model missing: run packaging/fetch-model.sh"
