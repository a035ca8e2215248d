// Options and helpers shared by the tokenselect subcommands.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "engine/session.hpp"
#include "model/model.hpp"

namespace cli {

struct ModelArgs {
  std::string model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  int threads = 0;
  int64_t ctx = 0;
  int chunk = 512;
  void add_to(CLI::App& app);
  ts::SessionOptions session_options() const;
};

struct GenArgs {
  int max_tokens = 512;
  float temperature = 0.f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.1f;
  int repeat_last_n = 64;
  uint64_t seed = 42;
  std::vector<std::string> stop;
  std::string system;
  std::string chat_format;
  void add_to(CLI::App& app);
  ts::GenerateOptions generate_options() const;
};

std::shared_ptr<const ts::Model> load_model(const std::string& path, bool quiet);

double now_seconds();

// Prints "prefill 12288/52000 tokens  410 tok/s  ETA 1:37" on stderr, updating one line.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), start_(now_seconds()) {}
  void update(int64_t done, int64_t total);
  void finish();

 private:
  bool enabled_;
  double start_ = -1;
  bool printed_ = false;
};

// Ctrl-C cancels the current session's work; a second Ctrl-C exits at once.
void install_interrupt_handler();
void set_interrupt_target(ts::Session* s);
bool interrupted();
void clear_interrupted();

void add_run_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_eval_command(CLI::App& app);

}  // namespace cli
