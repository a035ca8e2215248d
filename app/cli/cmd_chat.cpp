// tokenselect chat: interactive multi-turn chat, optionally over documents.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "cli_common.hpp"
#include "select_args.hpp"

namespace cli {
namespace {

struct ChatArgs {
  ModelArgs model;
  GenArgs gen;
  SelectArgs select;
  std::vector<std::string> docs;
};

int32_t message_count(const ts_session* s) {
  int32_t n = 0;
  check(ts_session_message_count(s, &n));
  return n;
}

void chat_loop(const ChatArgs& a) {
  ModelPtr model = load_model(a.model.model, false);
  SessionPtr session = open_session(model.get(), a.model, a.select, &a.gen);
  ts_session* s = session.get();
  const int32_t n_system = message_count(s);  // what /reset keeps: the system prompt, if any
  std::vector<std::string> docs;
  for (const std::string& path : a.docs) docs.push_back(read_document(path));
  GenerateOptions go = a.gen.generate_options();
  fmt::print(stderr, "context {} tokens. Type a message; /reset starts over, /exit or Ctrl-D quits, Ctrl-C stops an answer.\n",
             session_stats(s).n_ctx);
  bool first = true;  // the documents go with the first message of a conversation
  std::string line;
  for (;;) {
    fmt::print(stderr, "\n> ");
    clear_interrupted();
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line.empty()) continue;
    if (line == "/reset") {
      // Dropping the messages keeps the KV cache, so the documents' prefix is reused.
      check(ts_session_truncate_messages(s, n_system));
      first = true;
      fmt::print(stderr, "(conversation cleared)\n");
      continue;
    }
    const int32_t n_before = message_count(s);
    if (first)
      for (size_t i = 0; i < docs.size(); ++i)
        check(ts_session_add_document(s, a.docs[i].c_str(), docs[i].data(), docs[i].size(), nullptr));
    check(ts_session_add_message(s, TS_ROLE_USER, line.data(), line.size()));
    InterruptTarget target(s);
    ProgressLine progress(true);
    const ts_status ps = ts_session_prefill(s, ProgressLine::callback, &progress);
    progress.finish();
    if (ps == TS_CANCELLED) {
      check(ts_session_truncate_messages(s, n_before));
      fmt::print(stderr, "(prefill cancelled; the message was dropped)\n");
    } else {
      check(ps);
      Answer answer;
      int32_t reason = TS_STOP_NONE;
      const ts_status gs = ts_session_generate(s, go.get(), Answer::callback, &answer, &reason);
      if (gs != TS_CANCELLED) check(gs);
      first = false;
      std::fputc('\n', stdout);
      if (reason == TS_STOP_CANCELLED) fmt::print(stderr, "(stopped)\n");
    }
    const ts_session_stats st = session_stats(s);
    fmt::print(stderr, "[context {}/{} tokens]\n", st.n_tokens, st.n_ctx);
  }
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand("chat", "interactive chat, optionally over documents");
  args->model.add_to(*cmd);
  args->gen.add_to(*cmd);
  args->select.add_to(*cmd);
  cmd->add_option("-d,--doc", args->docs, "text document(s) given with the first message (repeatable)");
  cmd->callback([args] { chat_loop(*args); });
}

}  // namespace cli
