// Options and helpers shared by the tokenselect subcommands.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "api.hpp"

namespace cli {

struct ModelArgs {
  std::string model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  int threads = 0;
  int64_t ctx = 0;
  int chunk = 512;
  std::string cache_type_k = "f16";  // f16 | f32
  std::string device = "auto";        // auto | cpu | cuda
  void add_to(CLI::App& app);
};

// ts_generate_options and the stop-string array it points into.
struct GenerateOptions {
  ts_generate_options options;
  std::vector<const char*> stop;  // into GenArgs::stop
  const ts_generate_options* get() {
    options.stop = stop.data();
    options.n_stop = stop.size();
    return &options;
  }
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
  GenerateOptions generate_options() const;
};

ModelPtr load_model(const std::string& path, bool quiet);

double now_seconds();

// Reads a text document: UTF-8 without NUL bytes (a BOM is dropped, CRLF becomes LF). Throws
// Error naming the file and the byte offset of what is wrong.
std::string read_document(const std::string& path);

// The next token by greedy choice over the session's last logits.
int32_t argmax_token(const ts_session* s);

// A streamed answer: collected, and echoed to stdout when `echo`.
struct Answer {
  bool echo = true;
  std::string text;
  // ts_token_fn for an Answer passed as user_data.
  static int32_t callback(const char* utf8, size_t len, int32_t token, void* answer);
};

// Prints "prefill 12288/52000 tokens  410 tok/s  ETA 1:37" on stderr, updating one line.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), start_(now_seconds()) {}
  void update(int64_t done, int64_t total);
  void finish();
  int64_t total_override = 0;  // > 0: shown instead of the callback's total (a prefill in two calls)

  // ts_progress_fn for a ProgressLine passed as user_data.
  static int32_t callback(int64_t done, int64_t total, void* line);

 private:
  bool enabled_;
  double start_ = -1;
  bool printed_ = false;
};

// Ctrl-C cancels the target session's running call; a second Ctrl-C exits at once.
void install_interrupt_handler();
void clear_interrupted();
bool interrupted();  // Ctrl-C pressed since the last clear (for work outside a session)
// Makes `s` the Ctrl-C target for its lifetime.
class InterruptTarget {
 public:
  explicit InterruptTarget(ts_session* s);
  ~InterruptTarget();
  InterruptTarget(const InterruptTarget&) = delete;
  InterruptTarget& operator=(const InterruptTarget&) = delete;
};

void add_run_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_mkmodel_command(CLI::App& app);

}  // namespace cli
