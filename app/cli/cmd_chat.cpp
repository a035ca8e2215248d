// tokenselect chat: interactive multi-turn chat, optionally over documents.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli_common.hpp"
#include "select_args.hpp"
#include "engine/chat.hpp"
#include "engine/document.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace cli {
namespace {

struct ChatArgs {
  ModelArgs model;
  GenArgs gen;
  SelectArgs select;
  std::vector<std::string> docs;
};

void chat_loop(const ChatArgs& a) {
  auto model = load_model(a.model.model, false);
  ts::SessionOptions so = a.model.session_options();
  a.select.apply(so);
  ts::Session session(model, so);
  const ts::ChatTemplate tmpl = ts::ChatTemplate::from_model(model->tokenizer().chat_template(), a.gen.chat_format);
  auto chat = std::make_unique<ts::Chat>(session, tmpl, a.gen.system);
  std::string doc_text;
  for (const std::string& path : a.docs) doc_text += ts::read_document(path) + "\n\n";
  fmt::print(stderr, "context {} tokens. Type a message; /reset starts over, /exit or Ctrl-D quits, Ctrl-C stops an answer.\n",
             session.n_ctx());
  bool first = true;
  std::string line;
  for (;;) {
    fmt::print(stderr, "\n> ");
    clear_interrupted();
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line.empty()) continue;
    if (line == "/reset") {
      chat = std::make_unique<ts::Chat>(session, tmpl, a.gen.system);
      first = true;
      fmt::print(stderr, "(conversation cleared)\n");
      continue;
    }
    const std::string message = first ? doc_text + line : line;
    ProgressLine progress(true);
    set_interrupt_target(&session);
    try {
      ts::GenerateResult r = chat->ask(
          message, a.gen.generate_options(),
          [](std::string_view piece, int32_t) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
          },
          [&](int64_t done, int64_t total) { progress.update(done, total); });
      progress.finish();
      first = false;
      std::fputc('\n', stdout);
      if (r.reason == ts::StopReason::cancelled) fmt::print(stderr, "(stopped)\n");
    } catch (const ts::Error& e) {
      progress.finish();
      if (e.status() != ts::Status::cancelled) throw;
      fmt::print(stderr, "(prefill cancelled; the message was dropped)\n");
    }
    set_interrupt_target(nullptr);
    fmt::print(stderr, "[context {}/{} tokens]\n", session.tokens().size(), session.n_ctx());
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
