#include "session_probe.h"

#include <tokenselect.h>

namespace probe {

namespace {

// Two-call pattern: ask for the size, then fill. Empty on any failure.
template <typename T, typename Fn>
QVector<T> fetch(Fn&& get) {
  size_t needed = 0;
  if (get(nullptr, 0, &needed) != TS_OK || needed == 0) return {};
  QVector<T> out(static_cast<qsizetype>(needed));
  size_t got = 0;
  if (get(out.data(), needed, &got) != TS_OK) return {};
  out.resize(qsizetype(got));
  return out;
}

}  // namespace

qint64 tokenCount(const ts_session* s) {
  size_t needed = 0;
  return ts_session_get_tokens(s, nullptr, 0, &needed) == TS_OK ? qint64(needed) : 0;
}

EngineStats stats(const ts_session* s) {
  ts_session_stats st{};
  st.struct_size = sizeof st;
  EngineStats out;
  if (ts_session_get_stats(s, &st) != TS_OK) return out;
  out.nTokens = st.n_tokens;
  out.nCtx = st.n_ctx;
  out.prefillTokens = st.prefill_tokens;
  out.prefillTokensPerSecond = st.prefill_seconds > 0 ? double(st.prefill_tokens) / st.prefill_seconds : 0;
  out.decodeTokensPerSecond = st.decode_seconds > 0 ? double(st.decode_tokens) / st.decode_seconds : 0;
  out.firstTokenSeconds = st.first_token_seconds;
  out.cacheHits = st.select_cache_hits;
  out.cacheMisses = st.select_cache_misses;
  out.selectingSteps = st.selecting_steps;
  out.denseSteps = st.dense_steps;
  ts_select_settings sel;
  ts_select_settings_init(&sel);
  if (ts_session_get_select(s, &sel) == TS_OK) {
    out.select.dense = sel.attention == TS_ATTENTION_FULL;
    out.select.k = sel.k;
    out.select.nInit = sel.n_init;
    out.select.nLocal = sel.n_local;
    out.select.cache = sel.select_cache != 0;
    out.select.cacheThreshold = sel.cache_threshold;
    out.select.fp8Keys = sel.scoring_keys == TS_SCORING_KEYS_FP8;
  }
  return out;
}

QVector<float> scores(const ts_session* s) {
  return fetch<float>([s](float* buf, size_t cap, size_t* needed) {
    return ts_session_get_binned_scores(s, kBins, buf, cap, needed);
  });
}

SelectionFrame frame(const ts_session* s, int nLayer) {
  SelectionFrame f;
  f.nTokens = tokenCount(s);
  f.counts = fetch<quint32>([s](quint32* buf, size_t cap, size_t* needed) {
    return ts_session_get_selection_counts(s, buf, cap, needed);
  });
  f.binnedCounts = fetch<quint64>([s](quint64* buf, size_t cap, size_t* needed) {
    return ts_session_get_binned_counts(s, kBins, reinterpret_cast<uint64_t*>(buf), cap, needed);
  });
  f.scores = scores(s);
  f.nLayer = nLayer;
  f.nBins = kBins;
  f.stats = stats(s);
  return f;
}

bool layout(const ts_session* s, int document, DocumentLayout* out) {
  int64_t first = 0;
  size_t needed = 0;
  if (ts_session_get_document_tokens(s, document, &first, nullptr, 0, &needed) != TS_OK) return false;
  QVector<quint64> offsets(static_cast<qsizetype>(needed));
  if (needed > 0 && ts_session_get_document_tokens(s, document, &first, reinterpret_cast<uint64_t*>(offsets.data()),
                                                   needed, &needed) != TS_OK)
    return false;
  out->document = document;
  out->firstPosition = first;
  out->byteOffsets = offsets;
  return true;
}

}  // namespace probe
