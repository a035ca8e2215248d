// tokenselect: chat over long documents, one-shot prompts, model info and benchmarks.
#include <fmt/format.h>

#include "cli_common.hpp"

int main(int argc, char** argv) {
  CLI::App app{"tokenselect: long-context LLM inference with dynamic token-level KV selection"};
  app.require_subcommand(1);
  cli::add_run_command(app);
  cli::add_chat_command(app);
  cli::add_info_command(app);
  cli::add_bench_command(app);
  cli::add_eval_command(app);
  cli::add_mkmodel_command(app);
  cli::install_interrupt_handler();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cli::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return e.status() == TS_CANCELLED ? 130 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
