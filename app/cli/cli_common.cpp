#include "cli_common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace cli {

void ModelArgs::add_to(CLI::App& app) {
  app.add_option("-m,--model", model, "GGUF model file")->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads (0: all)")->capture_default_str();
  app.add_option("-c,--ctx", ctx, "maximum context in tokens (0: the model's trained context)")->capture_default_str();
  app.add_option("--chunk", chunk, "prefill chunk size")->capture_default_str();
  app.add_option("--cache-type-k", cache_type_k,
                 "precision of cached keys: f16, or f32 (1.5x the cache; full-attention logits then equal "
                 "llama.cpp's CPU results bit for bit)")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  app.add_option("--device", device, "where to compute: auto (the GPU when one can run the model), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
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

GenerateOptions GenArgs::generate_options() const {
  GenerateOptions g;
  ts_generate_options_init(&g.options);
  g.options.max_tokens = max_tokens;
  g.options.temperature = temperature;
  g.options.top_k = top_k;
  g.options.top_p = top_p;
  g.options.min_p = min_p;
  g.options.repeat_penalty = repeat_penalty;
  g.options.repeat_last_n = repeat_last_n;
  g.options.seed = seed;
  for (const std::string& s : stop) g.stop.push_back(s.c_str());
  return g;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ModelPtr load_model(const std::string& path, bool quiet) {
  const double t0 = now_seconds();
  ts_model* raw = nullptr;
  check(ts_model_load(path.c_str(), nullptr, &raw));
  ModelPtr m(raw);
  if (!quiet) {
    const ts_model_info info = model_info(m.get());
    fmt::print(stderr, "loaded {} ({}, {} layers) in {:.2f} s\n", path, info.name, info.n_layer, now_seconds() - t0);
  }
  return m;
}

namespace {

// Offset of the first byte that does not start a valid UTF-8 sequence (overlong forms and
// surrogates are invalid), or nullopt.
std::optional<size_t> find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { i += 1; continue; }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return i;
    i += len;
  }
  return std::nullopt;
}

}  // namespace

std::string read_document(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(TS_ERR_IO, fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(TS_ERR_IO, fmt::format("{}: read error", path));
  std::string text = std::move(ss).str();
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    throw Error(TS_ERR_INVALID_ARG, fmt::format("{}: document is empty", path));
  if (size_t z = text.find('\0'); z != std::string::npos)
    throw Error(TS_ERR_INVALID_ARG,
                fmt::format("{}: looks like a binary file (NUL byte at offset {}); only UTF-8 text is accepted", path, z));
  if (auto bad = find_invalid_utf8(text))
    throw Error(TS_ERR_INVALID_ARG, fmt::format("{}: invalid UTF-8 at byte offset {}", path, *bad));
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out.push_back(text[i]);
  return out;
}

int32_t argmax_token(const ts_session* s) {
  const float* logits = nullptr;
  size_t n = 0;
  check(ts_session_get_logits(s, &logits, &n));
  return int32_t(std::max_element(logits, logits + n) - logits);
}

void ProgressLine::update(int64_t done, int64_t total) {
  if (!enabled_) return;
  if (total_override > 0) total = total_override;
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

int32_t ProgressLine::callback(int64_t done, int64_t total, void* line) {
  static_cast<ProgressLine*>(line)->update(done, total);
  return TS_CONTINUE;
}

int32_t Answer::callback(const char* utf8, size_t len, int32_t /*token*/, void* answer) {
  auto& a = *static_cast<Answer*>(answer);
  a.text.append(utf8, len);
  if (a.echo) {
    std::fwrite(utf8, 1, len, stdout);
    std::fflush(stdout);
  }
  return TS_CONTINUE;
}

namespace {
std::atomic<ts_session*> g_target{nullptr};
std::atomic<int> g_interrupts{0};

void on_sigint(int) {
  if (g_interrupts.fetch_add(1) >= 1) _exit(130);  // second Ctrl-C: leave now
  if (ts_session* s = g_target.load()) ts_session_cancel(s);  // an atomic store: signal-safe
}
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}
void clear_interrupted() { g_interrupts.store(0); }
bool interrupted() { return g_interrupts.load() > 0; }
InterruptTarget::InterruptTarget(ts_session* s) { g_target.store(s); }
InterruptTarget::~InterruptTarget() { g_target.store(nullptr); }

}  // namespace cli
