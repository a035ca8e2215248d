// tokenselect run: one prompt, optionally over a document, streamed to stdout.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "select_args.hpp"
#include "engine/chat.hpp"
#include "engine/document.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

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

std::string compose_user_message(const std::vector<std::string>& docs, const std::string& prompt) {
  std::string msg;
  for (const std::string& path : docs) {
    msg += ts::read_document(path);
    if (!msg.empty() && msg.back() != '\n') msg += '\n';
    msg += '\n';
  }
  return msg + prompt;
}

void run(const RunArgs& a) {
  const std::string user = compose_user_message(a.docs, a.prompt);
  auto model = load_model(a.model.model, a.quiet || a.json);
  ts::SessionOptions so = a.model.session_options();
  a.select.apply(so);
  ts::Session session(model, so);
  ts::Chat chat(session, ts::ChatTemplate::from_model(model->tokenizer().chat_template(), a.gen.chat_format),
                a.gen.system);
  const int64_t n_prompt = int64_t(chat.prompt_tokens(user).size());
  if (n_prompt >= session.n_ctx())
    throw ts::Error(ts::Status::context_full,
                    fmt::format("the prompt is {} tokens but the context holds {} (raise --ctx)", n_prompt, session.n_ctx()));
  set_interrupt_target(&session);
  ProgressLine progress(!a.quiet && !a.json);
  const bool stream = !a.json;
  ts::GenerateResult r = chat.ask(
      user, a.gen.generate_options(),
      [&](std::string_view piece, int32_t) {
        if (stream) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        }
        return true;
      },
      [&](int64_t done, int64_t total) { progress.update(done, total); });
  progress.finish();
  set_interrupt_target(nullptr);
  const ts::SessionStats& st = session.stats();
  const double prefill_tps = st.prefill_seconds > 0 ? double(st.prefill_tokens) / st.prefill_seconds : 0;
  const double decode_tps = st.decode_seconds > 0 ? double(st.decode_tokens) / st.decode_seconds : 0;
  if (a.json) {
    nlohmann::json j = {{"text", r.text},
                        {"tokens", r.tokens},
                        {"stop_reason", ts::stop_reason_name(r.reason)},
                        {"prompt_tokens", n_prompt},
                        {"prefill_tokens_per_s", prefill_tps},
                        {"time_to_first_token_s", st.prefill_seconds + st.first_token_seconds},
                        {"decode_tokens", st.decode_tokens},
                        {"decode_tokens_per_s", decode_tps}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::fputc('\n', stdout);
  if (!a.quiet)
    fmt::print(stderr, "[{}] prompt {} tokens, prefill {:.1f} tok/s, first token after {:.2f} s, decode {} tokens at {:.1f} tok/s\n",
               ts::stop_reason_name(r.reason), n_prompt, prefill_tps, st.prefill_seconds + st.first_token_seconds,
               st.decode_tokens, decode_tps);
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
