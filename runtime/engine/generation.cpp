#include "engine/generation.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace ts {
namespace {

// Longest suffix of `text` that is a proper prefix of some stop string: it must be held back
// because the next piece may complete the stop string.
size_t held_back(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > hold; --n)
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        hold = n;
        break;
      }
  return hold;
}

}  // namespace

Generation::Generation(Session& s, const GenerateOptions& opts, double t_start)
    : s_(s), opts_(opts), sampler_(opts.sampler), stream_(s.model().tokenizer()), t_start_(t_start) {
  if (!s.has_logits_) fail(Status::invalid_arg, "generate: nothing to continue from (prefill first)");
  if (opts.max_tokens < 0) fail(Status::invalid_arg, "generate: max_tokens must be >= 0");
  for (const std::string& stop : opts.stop)
    if (stop.empty()) fail(Status::invalid_arg, "generate: empty stop string");
}

void Generation::finish(StopReason reason, Step& st, bool flush) {
  r_.reason = reason;
  done_ = true;
  if (flush) {
    pending_ += stream_.flush();
    st.piece += pending_;
  }
  pending_.clear();
  r_.text += st.piece;
}

void Generation::stop(StopReason reason) {
  if (done_) return;
  r_.reason = reason;
  done_ = true;
  pending_.clear();
}

Generation::Step Generation::next() {
  Step st;
  if (done_) fail(Status::invalid_arg, "generate: the answer has ended");
  if (produced_ >= opts_.max_tokens) {
    finish(StopReason::max_tokens, st, true);
    return st;
  }
  if (s_.cancel_.exchange(false)) {
    finish(StopReason::cancelled, st, true);
    return st;
  }
  const Tokenizer& tok = s_.model().tokenizer();
  const int32_t id = sampler_.sample(s_.last_logits_.data(), s_.model().hparams().n_vocab, s_.tokens_);
  if (produced_++ == 0) s_.stats_.first_token_seconds = now_seconds() - t_start_;
  if (tok.is_end_of_generation(id)) {
    finish(StopReason::end_of_generation, st, true);
    return st;
  }
  st.token = id;
  r_.tokens.push_back(id);
  pending_ += stream_.push(id);
  size_t cut = std::string::npos;
  for (const std::string& stop : opts_.stop) cut = std::min(cut, pending_.find(stop));
  if (cut != std::string::npos) {
    st.piece = pending_.substr(0, cut);
    finish(StopReason::stop_string, st, false);
    return st;
  }
  const size_t hold = held_back(pending_, opts_.stop);
  st.piece = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  if (int64_t(s_.tokens_.size()) >= s_.kv_.capacity()) {
    finish(StopReason::context_full, st, true);
    return st;
  }
  r_.text += st.piece;
  const double t0 = now_seconds();
  s_.step(std::span<const int32_t>(&id, 1), LogitsMode::last);
  s_.stats_.decode_seconds += now_seconds() - t0;
  s_.stats_.decode_tokens += 1;
  return st;
}

}  // namespace ts
