// tokenselect run: one prompt, optionally over documents, streamed to stdout.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "select_args.hpp"

namespace cli {
namespace {

struct RunArgs {
  ModelArgs model;
  GenArgs gen;
  SelectArgs select;
  std::string prompt;
  std::vector<std::string> docs;
  bool json = false;
  bool quiet = false;
};

const char* stop_reason_name(int32_t r) {  // a ts_stop_reason
  switch (r) {
    case TS_STOP_END_OF_GENERATION: return "end_of_generation";
    case TS_STOP_STOP_STRING: return "stop_string";
    case TS_STOP_MAX_TOKENS: return "max_tokens";
    case TS_STOP_CALLBACK: return "callback";
    case TS_STOP_CANCELLED: return "cancelled";
    case TS_STOP_CONTEXT_FULL: return "context_full";
  }
  return "unknown";
}

void run(const RunArgs& a) {
  std::vector<std::string> docs;  // read first: a bad file fails before the model loads
  for (const std::string& path : a.docs) docs.push_back(read_document(path));
  ModelPtr model = load_model(a.model.model, a.quiet || a.json);
  SessionPtr session = open_session(model.get(), a.model, a.select, &a.gen);
  ts_session* s = session.get();
  for (size_t i = 0; i < docs.size(); ++i)
    check(ts_session_add_document(s, a.docs[i].c_str(), docs[i].data(), docs[i].size(), nullptr));
  check(ts_session_add_message(s, TS_ROLE_USER, a.prompt.data(), a.prompt.size()));

  InterruptTarget target(s);
  // Prefill on its own first, to know the prompt's size; a cancel here exits with status 130.
  ProgressLine progress(!a.quiet && !a.json);
  const ts_status ps = ts_session_prefill(s, ProgressLine::callback, &progress);
  progress.finish();
  if (ps == TS_ERR_CONTEXT_FULL) throw Error(ps, std::string(ts_last_error()) + " (raise --ctx)");
  check(ps);
  const int64_t n_prompt = session_stats(s).n_tokens;

  GenerateOptions go = a.gen.generate_options();
  Answer answer;
  answer.echo = !a.json;
  int32_t reason = TS_STOP_NONE;
  const ts_status gs = ts_session_generate(s, go.get(), Answer::callback, &answer, &reason);
  if (gs != TS_CANCELLED) check(gs);  // a cancelled answer is kept, as any other ending
  // The answer's tokens are what the cache holds after the prompt (the callback sees only the
  // tokens that complete text). A token that completed a stop string or filled the context
  // never ran, so it is not among them.
  std::vector<int32_t> tokens = fetch_array<int32_t>(
      [&](int32_t* buf, size_t cap, size_t* needed) { return ts_session_get_tokens(s, buf, cap, needed); });
  tokens.erase(tokens.begin(), tokens.begin() + std::min<ptrdiff_t>(n_prompt, ptrdiff_t(tokens.size())));

  const ts_session_stats st = session_stats(s);
  const double prefill_tps = st.prefill_seconds > 0 ? double(st.prefill_tokens) / st.prefill_seconds : 0;
  const double decode_tps = st.decode_seconds > 0 ? double(st.decode_tokens) / st.decode_seconds : 0;
  const double ttft = st.prefill_seconds + st.first_token_seconds;
  if (a.json) {
    nlohmann::json j = {{"text", answer.text},
                        {"tokens", tokens},
                        {"stop_reason", stop_reason_name(reason)},
                        {"prompt_tokens", n_prompt},
                        {"prefill_tokens_per_s", prefill_tps},
                        {"time_to_first_token_s", ttft},
                        {"decode_tokens", st.decode_tokens},
                        {"decode_tokens_per_s", decode_tps}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);  // before the statistics on stderr
  if (!a.quiet)
    fmt::print(stderr, "[{}] prompt {} tokens, prefill {:.1f} tok/s, first token after {:.2f} s, decode {} tokens at {:.1f} tok/s\n",
               stop_reason_name(reason), n_prompt, prefill_tps, ttft, st.decode_tokens, decode_tps);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "answer one prompt, optionally over documents");
  args->model.add_to(*cmd);
  args->gen.add_to(*cmd);
  args->select.add_to(*cmd);
  cmd->add_option("-p,--prompt", args->prompt, "the question or instruction")->required();
  cmd->add_option("-d,--doc", args->docs, "text document(s) put before the prompt (repeatable)");
  cmd->add_flag("--json", args->json, "print one JSON object with the answer and timings");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress or statistics on stderr");
  cmd->callback([args] { run(*args); });
}

}  // namespace cli
