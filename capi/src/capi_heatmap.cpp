// Heatmap data: what the attention selected, per layer and per token, and where documents sit.
#include <fmt/format.h>

#include "capi_internal.hpp"

namespace {

const ts::TokenSelectPolicy& policy(const ts_session* s) { return capi::readable(s).policy(); }

void check_bins(int32_t n_bins) {
  if (n_bins < 1) capi::invalid(fmt::format("n_bins must be >= 1 (got {})", n_bins));
}

}  // namespace

extern "C" {

TS_API ts_status ts_session_set_recording(ts_session* session, int32_t enabled) {
  return capi::guard("ts_session_set_recording", [&] {
    capi::writable(session).policy().set_recording(enabled != 0);
    return TS_OK;
  });
}

TS_API ts_status ts_session_get_selection(const ts_session* session, int32_t layer, int32_t* positions, float* scores,
                                          size_t capacity, size_t* needed) {
  return capi::guard("ts_session_get_selection", [&] {
    const ts::TokenSelectPolicy& p = policy(session);
    const int32_t n_layer = capi::readable(session).model().hparams().n_layer;
    if (layer < 0 || layer >= n_layer) capi::invalid(fmt::format("layer {} is outside [0, {})", layer, n_layer));
    static const ts::LayerSelection kNone;
    const ts::LayerSelection& sel = p.recording() ? p.last_selection()[size_t(layer)] : kNone;
    const size_t n = sel.positions.size();
    if ((!positions && !scores) || capacity == 0) {
      capi::require(needed, "needed");
      *needed = n;
      return TS_OK;
    }
    if (needed) *needed = n;
    const size_t m = std::min(n, capacity);
    if (positions) std::copy_n(sel.positions.begin(), m, positions);
    if (scores) std::copy_n(sel.votes.begin(), m, scores);
    return n <= capacity ? TS_OK : TS_TRUNCATED;
  });
}

TS_API ts_status ts_session_get_selection_counts(const ts_session* session, uint32_t* counts, size_t capacity,
                                                 size_t* needed) {
  return capi::guard("ts_session_get_selection_counts", [&] {
    const ts::TokenSelectPolicy& p = policy(session);
    std::vector<uint32_t> all;
    if (p.recording()) {
      all.assign(capi::readable(session).tokens().size(), 0);
      const std::vector<uint32_t>& c = p.selection_counts();
      std::copy_n(c.begin(), std::min(c.size(), all.size()), all.begin());
    }
    return capi::put_array(all.data(), all.size(), counts, capacity, needed);
  });
}

TS_API ts_status ts_session_get_binned_scores(const ts_session* session, int32_t n_bins, float* scores, size_t capacity,
                                              size_t* needed) {
  return capi::guard("ts_session_get_binned_scores", [&] {
    const ts::TokenSelectPolicy& p = policy(session);
    check_bins(n_bins);
    const ts::Session& s = capi::readable(session);
    std::vector<float> out;
    if (p.recording()) {
      const int64_t n = int64_t(s.tokens().size());
      out = n > 0 ? p.binned_votes(n, n_bins) : std::vector<float>(size_t(s.model().hparams().n_layer) * size_t(n_bins), 0.f);
    }
    return capi::put_array(out.data(), out.size(), scores, capacity, needed);
  });
}

TS_API ts_status ts_session_get_binned_counts(const ts_session* session, int32_t n_bins, uint64_t* counts,
                                              size_t capacity, size_t* needed) {
  return capi::guard("ts_session_get_binned_counts", [&] {
    const ts::TokenSelectPolicy& p = policy(session);
    check_bins(n_bins);
    const int64_t n = int64_t(capi::readable(session).tokens().size());
    std::vector<uint64_t> out;
    if (p.recording()) out = n > 0 ? p.binned_counts(n, n_bins) : std::vector<uint64_t>(size_t(n_bins), 0);
    return capi::put_array(out.data(), out.size(), counts, capacity, needed);
  });
}

TS_API ts_status ts_session_get_document_tokens(const ts_session* session, int32_t document_id,
                                                int64_t* first_position, uint64_t* offsets, size_t capacity,
                                                size_t* needed) {
  return capi::guard("ts_session_get_document_tokens", [&] {
    const ts::Session& s = capi::readable(session);
    const size_t n_docs = session->conversation ? session->conversation->documents().size() : 0;
    if (document_id < 0 || size_t(document_id) >= n_docs)
      capi::invalid(fmt::format("document id {} is outside [0, {})", document_id, n_docs));
    const ts::ConversationDocument& d = session->conversation->documents()[size_t(document_id)];
    if (d.first_position < 0) capi::invalid(fmt::format("document {} has not been prefilled", document_id));
    if (d.first_position + int64_t(d.offsets.size()) > int64_t(s.tokens().size()))
      capi::invalid(fmt::format("document {} is no longer in the KV cache", document_id));
    if (first_position) *first_position = d.first_position;
    return capi::put_array(d.offsets.data(), d.offsets.size(), offsets, capacity, needed);
  });
}

}  // extern "C"
