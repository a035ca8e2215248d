// One answer being generated on a Session, a token at a time: sampling, streaming detokenising,
// stop strings held back until they cannot match, and the stop conditions. Session::generate
// drives it with a callback; the C API's pull-style ts_session_next_token drives it directly.
#pragma once
#include <string>

#include "engine/sampler.hpp"
#include "engine/session.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ts {

class Generation {
 public:
  // Throws Error(invalid_arg) when the session has no logits to continue from or the options
  // are invalid. The session must outlive the Generation and not be changed meanwhile. The
  // first-token time is counted from t_start (e.g. the start of the prompt's prefill).
  Generation(Session& s, const GenerateOptions& opts, double t_start = now_seconds());

  struct Step {
    std::string piece;   // text to hand out now: whole UTF-8, maybe empty
    int32_t token = -1;  // the token sampled in this step; -1 when none (end, or final flush)
  };
  // Samples and runs one token. When the answer ends in this step, done() turns true and the
  // piece includes the final flush. Must not be called once done().
  Step next();
  // Ends the answer now with `reason` (the caller's stop); pending text is dropped.
  void stop(StopReason reason);

  bool done() const { return done_; }
  const GenerateResult& result() const { return r_; }

 private:
  void finish(StopReason reason, Step& st, bool flush);

  Session& s_;
  GenerateOptions opts_;
  Sampler sampler_;
  TokenStreamDecoder stream_;
  GenerateResult r_;
  std::string pending_;  // decoded text not yet handed out (may start a stop string)
  double t_start_;
  int32_t produced_ = 0;
  bool done_ = false;
};

}  // namespace ts
