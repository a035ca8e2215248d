#include "cli_common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>

namespace cli {

void ModelArgs::add_to(CLI::App& app) {
  app.add_option("-m,--model", model, "GGUF model file")->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads (0: all)")->capture_default_str();
  app.add_option("-c,--ctx", ctx, "maximum context in tokens (0: the model's trained context)")->capture_default_str();
  app.add_option("--chunk", chunk, "prefill chunk size")->capture_default_str();
}

ts::SessionOptions ModelArgs::session_options() const {
  ts::SessionOptions o;
  o.n_ctx = ctx;
  o.n_threads = threads;
  o.chunk = chunk;
  return o;
}

void GenArgs::add_to(CLI::App& app) {
  app.add_option("-n,--max-tokens", max_tokens, "maximum tokens to generate")->capture_default_str();
  app.add_option("--temp", temperature, "sampling temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", top_k, "top-k (0: off)")->capture_default_str();
  app.add_option("--top-p", top_p, "top-p (1: off)")->capture_default_str();
  app.add_option("--min-p", min_p, "min-p (0: off)")->capture_default_str();
  app.add_option("--repeat-penalty", repeat_penalty, "repetition penalty (1: off)")->capture_default_str();
  app.add_option("--repeat-last-n", repeat_last_n, "tokens the penalty looks back over")->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_option("--stop", stop, "stop string (repeatable)");
  app.add_option("--system", system, "system prompt (default: the model's own)");
  app.add_option("--chat-format", chat_format, "chatml, llama3 or llama2 (default: from the model)");
}

ts::GenerateOptions GenArgs::generate_options() const {
  ts::GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampler.temperature = temperature;
  o.sampler.top_k = top_k;
  o.sampler.top_p = top_p;
  o.sampler.min_p = min_p;
  o.sampler.repeat_penalty = repeat_penalty;
  o.sampler.repeat_last_n = repeat_last_n;
  o.sampler.seed = seed;
  o.stop = stop;
  return o;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::shared_ptr<const ts::Model> load_model(const std::string& path, bool quiet) {
  const double t0 = now_seconds();
  auto m = ts::Model::load(path);
  if (!quiet)
    fmt::print(stderr, "loaded {} ({}, {} layers) in {:.2f} s\n", path, m->hparams().name, m->hparams().n_layer,
               now_seconds() - t0);
  return m;
}

void ProgressLine::update(int64_t done, int64_t total) {
  if (!enabled_) return;
  const double t = now_seconds();
  if (start_ < 0) start_ = t;
  const double el = t - start_;
  if (done == 0 || el <= 0) {
    fmt::print(stderr, "\rprefill {}/{} tokens   ", done, total);
  } else {
    const double rate = double(done) / el;
    const double eta = double(total - done) / rate;
    fmt::print(stderr, "\rprefill {}/{} tokens  {:.0f} tok/s  ETA {}:{:02d}   ", done, total, rate, int(eta) / 60,
               int(eta) % 60);
  }
  printed_ = true;
}

void ProgressLine::finish() {
  if (printed_) fmt::print(stderr, "\n");
  printed_ = false;
  start_ = -1;
}

namespace {
std::atomic<ts::Session*> g_target{nullptr};
std::atomic<int> g_interrupts{0};

void on_sigint(int) {
  if (g_interrupts.fetch_add(1) >= 1) _exit(130);  // second Ctrl-C: leave now
  if (ts::Session* s = g_target.load()) s->cancel();
}
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}
void set_interrupt_target(ts::Session* s) { g_target.store(s); }
bool interrupted() { return g_interrupts.load() > 0; }
void clear_interrupted() { g_interrupts.store(0); }

}  // namespace cli
