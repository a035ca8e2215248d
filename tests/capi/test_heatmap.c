/* Heatmap data and document token offsets. Small TokenSelect settings (n_init 16, n_local 64,
 * k 64, chunk 64) so a ~400-token prompt is past the budget of 144 and selection is active. */
#include "check.h"

#define N_INIT 16
#define N_LOCAL 64
#define K 64
#define N_LAYER 30
#define MAX_CTX 4096

static ts_model* g_model;
static char* g_doc;
static size_t g_doc_len;
static const char g_note[] = "Second note: the lamp is white.";

static int64_t n_cached(const ts_session* s) {
  size_t needed = 0;
  CHECK_OK(ts_session_get_tokens(s, NULL, 0, &needed));
  return (int64_t)needed;
}

/* Layer `layer`'s last selection; returns its size (positions/scores hold up to K + N_LOCAL). */
static size_t selection(const ts_session* s, int32_t layer, int32_t* positions, float* scores) {
  size_t needed = 0, got = 0;
  if (!CHECK_OK(ts_session_get_selection(s, layer, NULL, NULL, 0, &needed))) return 0;
  if (!CHECK(needed <= K + N_LOCAL)) return 0;
  CHECK_OK(ts_session_get_selection(s, layer, positions, scores, K + N_LOCAL, &got));
  CHECK(got == needed);
  return needed;
}

/* Positions strictly ascending within [lo, hi); scores finite and >= 0. */
static int selection_sane(const int32_t* pos, const float* scores, size_t n, int64_t lo, int64_t hi) {
  size_t i;
  for (i = 0; i < n; ++i) {
    if (pos[i] < lo || pos[i] >= hi || (i > 0 && pos[i] <= pos[i - 1])) return 0;
    if (!isfinite(scores[i]) || scores[i] < 0) return 0;
  }
  return 1;
}

/* ---- Selection after a prefill past the budget --------------------------------------------- */

static void test_selection(const ts_session* s) {
  int32_t pos[K + N_LOCAL], pos2[K + N_LOCAL], few[10];
  float scores[K + N_LOCAL], scores2[K + N_LOCAL];
  int64_t t = n_cached(s);
  size_t needed = 0;
  int32_t layer;
  CHECK(t > N_INIT + K + N_LOCAL + 100);
  for (layer = 0; layer < N_LAYER; ++layer) {
    size_t n = selection(s, layer, pos, scores);
    CHECK(n == K); /* enough candidates: exactly k */
    if (!CHECK(selection_sane(pos, scores, n, N_INIT, t - N_LOCAL)))
      fprintf(stderr, "    layer %d: %zu positions, first %d, last %d, T %ld\n", (int)layer, n, n ? pos[0] : -1,
              n ? pos[n - 1] : -1, (long)t);
  }
  /* Either array may be NULL. */
  selection(s, 5, pos, scores);
  CHECK_OK(ts_session_get_selection(s, 5, pos2, NULL, K, &needed));
  CHECK(memcmp(pos, pos2, K * sizeof pos[0]) == 0);
  CHECK_OK(ts_session_get_selection(s, 5, NULL, scores2, K, &needed));
  CHECK(memcmp(scores, scores2, K * sizeof scores[0]) == 0);
  /* Too small: as much as fits. */
  CHECK_STATUS(ts_session_get_selection(s, 5, few, NULL, 10, &needed), TS_TRUNCATED);
  CHECK(needed == K && memcmp(few, pos, sizeof few) == 0);
  CHECK_ERR(ts_session_get_selection(s, -1, pos, scores, K, &needed), TS_ERR_INVALID_ARG, "layer");
  CHECK_ERR(ts_session_get_selection(s, N_LAYER, pos, scores, K, &needed), TS_ERR_INVALID_ARG, "layer");
}

/* Sum of the counts, and whether the sinks and the local window all count 0 (they are attended
 * without being selected; the last n_local tokens never left the window). */
static uint64_t sum_counts(const uint32_t* c, size_t n, int* unselected_zero) {
  uint64_t sum = 0;
  size_t i;
  *unselected_zero = 1;
  for (i = 0; i < n; ++i) {
    sum += c[i];
    if ((i < N_INIT || i + N_LOCAL >= n) && c[i] != 0) *unselected_zero = 0;
  }
  return sum;
}

/* Per-token counts: one per cached token, summing to at least every layer's last k picks. */
static uint32_t* counts(const ts_session* s, size_t* n) {
  size_t needed = 0, got = 0;
  uint32_t* c;
  CHECK_OK(ts_session_get_selection_counts(s, NULL, 0, &needed));
  c = (uint32_t*)calloc(needed + 1, sizeof *c);
  CHECK_OK(ts_session_get_selection_counts(s, c, needed, &got));
  CHECK(got == needed);
  *n = needed;
  return c;
}

static void test_counts(const ts_session* s) {
  size_t n = 0, i, needed = 0;
  uint32_t* c = counts(s, &n);
  uint64_t sum = 0;
  int32_t pos[K + N_LOCAL];
  float scores[K + N_LOCAL];
  size_t np = selection(s, 0, pos, scores);
  uint32_t few[4];
  int zero = 0;
  CHECK((int64_t)n == n_cached(s));
  sum = sum_counts(c, n, &zero);
  CHECK(sum >= (uint64_t)N_LAYER * K);
  CHECK(zero);
  for (i = 0; i < np; ++i) CHECK(c[pos[i]] >= 1); /* the last step's picks were counted */
  CHECK_STATUS(ts_session_get_selection_counts(s, few, 4, &needed), TS_TRUNCATED);
  CHECK(needed == n && memcmp(few, c, sizeof few) == 0);
  free(c);
}

/* Binned counts: n_bins = T bins of one token each equal the per-token counts; 8 bins keep
 * the total. */
static void test_binned_counts(const ts_session* s) {
  size_t n = 0, i, needed = 0;
  uint32_t* c = counts(s, &n);
  uint64_t* bins = (uint64_t*)calloc(n + 1, sizeof *bins);
  uint64_t sum = 0, bsum = 0, eight[8];
  int same = 1;
  CHECK_OK(ts_session_get_binned_counts(s, (int32_t)n, NULL, 0, &needed));
  CHECK(needed == n);
  CHECK_OK(ts_session_get_binned_counts(s, (int32_t)n, bins, n, &needed));
  for (i = 0; i < n; ++i) same &= bins[i] == c[i];
  CHECK(same);
  for (i = 0; i < n; ++i) sum += c[i];
  CHECK_OK(ts_session_get_binned_counts(s, 8, eight, 8, &needed));
  CHECK(needed == 8);
  for (i = 0; i < 8; ++i) bsum += eight[i];
  CHECK(bsum == sum);
  CHECK_STATUS(ts_session_get_binned_counts(s, 8, eight, 7, &needed), TS_TRUNCATED);
  CHECK(needed == 8);
  CHECK_ERR(ts_session_get_binned_counts(s, 0, eight, 8, &needed), TS_ERR_INVALID_ARG, "n_bins|bins");
  CHECK_ERR(ts_session_get_binned_counts(s, -2, eight, 8, &needed), TS_ERR_INVALID_ARG, "n_bins|bins");
  free(bins);
  free(c);
}

/* Binned scores: per layer, n_bins = T reproduces the selection's scores at their positions;
 * 8 bins keep each layer's total. */
static void test_binned_scores(const ts_session* s) {
  int64_t t = n_cached(s);
  size_t n = (size_t)t, needed = 0, i;
  float* per_token = (float*)calloc(N_LAYER * n, sizeof(float));
  float eight[N_LAYER * 8];
  int32_t layer;
  CHECK_OK(ts_session_get_binned_scores(s, (int32_t)n, NULL, 0, &needed));
  CHECK(needed == N_LAYER * n);
  CHECK_OK(ts_session_get_binned_scores(s, (int32_t)n, per_token, N_LAYER * n, &needed));
  CHECK_OK(ts_session_get_binned_scores(s, 8, eight, N_LAYER * 8, &needed));
  CHECK(needed == N_LAYER * 8);
  for (layer = 0; layer < N_LAYER; ++layer) {
    int32_t pos[K + N_LOCAL];
    float scores[K + N_LOCAL], expect[MAX_CTX];
    double total = 0, binned = 0, token_sum = 0;
    size_t np = selection(s, layer, pos, scores);
    int same = 1;
    memset(expect, 0, sizeof expect);
    for (i = 0; i < np; ++i) {
      expect[pos[i]] = scores[i];
      total += scores[i];
    }
    for (i = 0; i < n; ++i) {
      same &= fabsf(per_token[layer * n + i] - expect[i]) <= 1e-5f * (1 + fabsf(expect[i]));
      token_sum += per_token[layer * n + i];
    }
    for (i = 0; i < 8; ++i) binned += eight[layer * 8 + i];
    if (!CHECK(same)) fprintf(stderr, "    layer %d: per-token bins differ from the selection\n", (int)layer);
    CHECK(fabs(binned - total) <= 1e-3 * (1 + total));
    CHECK(fabs(token_sum - total) <= 1e-3 * (1 + total));
  }
  CHECK_STATUS(ts_session_get_binned_scores(s, 8, eight, N_LAYER * 8 - 1, &needed), TS_TRUNCATED);
  CHECK(needed == N_LAYER * 8);
  CHECK_ERR(ts_session_get_binned_scores(s, 0, eight, 8, &needed), TS_ERR_INVALID_ARG, "n_bins|bins");
  free(per_token);
}

/* ---- Document offsets ---------------------------------------------------------------------- */

/* Offsets start at 0, ascend, stay inside the text, and each token's text is its slice. */
static void check_document(const ts_session* s, int32_t id, const char* text, size_t len, int64_t* first_out,
                           size_t* n_out) {
  int64_t first = -1;
  size_t n = 0, got = 0, i, ncache = 0;
  uint64_t* off;
  int32_t* cache = (int32_t*)calloc(MAX_CTX, sizeof *cache);
  int ascending = 1, slices = 1;
  CHECK_OK(ts_session_get_document_tokens(s, id, &first, NULL, 0, &n));
  CHECK(n > 0 && first >= 0);
  off = (uint64_t*)calloc(n + 1, sizeof *off);
  CHECK_OK(ts_session_get_document_tokens(s, id, &first, off, n, &got));
  CHECK(got == n);
  CHECK_OK(ts_session_get_tokens(s, cache, MAX_CTX, &ncache));
  CHECK(first + (int64_t)n <= (int64_t)ncache);
  CHECK(off[0] == 0);
  for (i = 0; i < n; ++i) {
    uint64_t end = i + 1 < n ? off[i + 1] : len;
    char piece[256];
    size_t plen = 0;
    if (off[i] >= len || (i > 0 && off[i] <= off[i - 1])) ascending = 0;
    if (!ascending || first + (int64_t)i >= (int64_t)ncache) break;
    if (ts_detokenize(g_model, &cache[first + i], 1, 0, piece, sizeof piece, &plen) != TS_OK) {
      slices = 0;
      continue;
    }
    /* The last token may run on into the text after the document. */
    if ((i + 1 < n && plen != end - off[i]) || plen < end - off[i] || memcmp(piece, text + off[i], end - off[i]) != 0) {
      if (slices) fprintf(stderr, "    document %d token %zu: \"%s\" vs offset %lu..%lu\n", (int)id, i, piece,
                          (unsigned long)off[i], (unsigned long)end);
      slices = 0;
    }
  }
  CHECK(ascending);
  CHECK(slices);
  free(off);
  free(cache);
  *first_out = first;
  *n_out = n;
}

static void test_documents(const ts_session* s) {
  int64_t first0 = 0, first1 = 0;
  size_t n0 = 0, n1 = 0, needed = 0;
  uint64_t few[5];
  check_document(s, 0, g_doc, g_doc_len, &first0, &n0);
  check_document(s, 1, g_note, strlen(g_note), &first1, &n1);
  CHECK(n0 > 300 && first1 >= first0 + (int64_t)n0); /* in the order added */
  CHECK_STATUS(ts_session_get_document_tokens(s, 0, &first0, few, 5, &needed), TS_TRUNCATED);
  CHECK(needed == n0 && few[0] == 0);
  CHECK_ERR(ts_session_get_document_tokens(s, 2, &first0, few, 5, &needed), TS_ERR_INVALID_ARG, "document|id");
  CHECK_ERR(ts_session_get_document_tokens(s, -1, &first0, few, 5, &needed), TS_ERR_INVALID_ARG, "document|id");
}

/* ---- During and after an answer ------------------------------------------------------------ */

typedef struct watch {
  const ts_session* s;
  int calls, sane, tokens;
} watch;

/* A UI's view while the answer streams: const getters work inside the callback. */
static int32_t on_token(const char* utf8, size_t len, int32_t token, void* user) {
  watch* w = (watch*)user;
  int32_t pos[K + N_LOCAL];
  float scores[K + N_LOCAL];
  size_t n = 0, cap = 0;
  uint64_t bins[N_LAYER * 16];
  (void)utf8, (void)len;
  if (token >= 0) ++w->tokens;
  ++w->calls;
  if (ts_session_get_selection(w->s, 7, pos, scores, K + N_LOCAL, &n) != TS_OK) w->sane = 0;
  if (ts_session_get_tokens(w->s, NULL, 0, &cap) != TS_OK) w->sane = 0;
  if (n == 0 || !selection_sane(pos, scores, n, 0, (int64_t)cap)) w->sane = 0;
  if (ts_session_get_binned_counts(w->s, 16, bins, 16, &n) != TS_OK || n != 16) w->sane = 0;
  return TS_CONTINUE;
}

static void test_during_answer(ts_session* s) {
  ts_generate_options g = check_greedy(4);
  int32_t reason = TS_STOP_NONE;
  watch w = {NULL, 0, 1, 0};
  size_t n = 0;
  uint32_t* c;
  uint64_t before, after;
  int zero = 0;
  ts_session_stats stats;
  w.s = s;
  c = counts(s, &n);
  before = sum_counts(c, n, &zero);
  free(c);
  /* The prompt is already in the cache: this answer's counts come from at most 5 steps (4
   * tokens, and perhaps the prompt's last token run again for its logits). */
  CHECK_OK(ts_session_generate(s, &g, on_token, &w, &reason));
  CHECK(w.calls > 0 && w.sane);
  c = counts(s, &n);
  CHECK((int64_t)n == n_cached(s));
  after = sum_counts(c, n, &zero);
  printf("selection counts: %lu after the prefills, %lu after a 4-token answer\n", (unsigned long)before,
         (unsigned long)after);
  CHECK(after > 0 && after <= 5u * N_LAYER * K); /* restarted at the answer */
  CHECK(zero);
  free(c);
  stats.struct_size = sizeof stats;
  CHECK_OK(ts_session_get_stats(s, &stats));
  CHECK(stats.selecting_steps > 0);
  CHECK(stats.select_cache_misses > 0);
  CHECK(stats.select_cache_hits + stats.select_cache_misses <= stats.selecting_steps);
}

/* Dense attention selects nothing; recording off returns empty data. */
static void test_dense_and_off(ts_session* s) {
  ts_select_settings full;
  int32_t toks[8], pos[K + N_LOCAL], layer;
  float scores[K + N_LOCAL];
  size_t n = 0, needed = 0, i;
  uint64_t bins[8];
  int empty = 1;
  ts_select_settings_init(&full);
  full.attention = TS_ATTENTION_FULL;
  CHECK_OK(ts_session_set_select(s, &full));
  CHECK_OK(ts_tokenize(g_model, " and then", 9, 0, toks, 8, &n));
  CHECK_OK(ts_session_prefill_tokens(s, toks, n, NULL, NULL));
  for (layer = 0; layer < N_LAYER; ++layer) empty &= selection(s, layer, pos, scores) == 0;
  CHECK(empty);

  CHECK_OK(ts_session_set_recording(s, 0));
  CHECK_OK(ts_session_get_selection_counts(s, NULL, 0, &needed));
  CHECK(needed == 0);
  CHECK_OK(ts_session_get_selection(s, 0, NULL, NULL, 0, &needed));
  CHECK(needed == 0);
  /* "Empty" binned data: no values, or all zero. */
  CHECK_OK(ts_session_get_binned_counts(s, 8, bins, 8, &needed));
  for (i = 0; i < needed && i < 8; ++i) CHECK(bins[i] == 0);
}

static int32_t on_progress(int64_t done, int64_t total, void* user) {
  (void)done;
  *(int64_t*)user = total;
  return TS_CONTINUE;
}

static const char* last_message(const ts_session* s) {
  static char buf[256];
  int32_t count = 0;
  size_t needed = 0;
  buf[0] = '\0';
  CHECK_OK(ts_session_message_count(s, &count));
  CHECK_OK(ts_session_get_message(s, count - 1, NULL, buf, sizeof buf, &needed));
  return buf;
}

static ts_session* make_session(void) {
  ts_select_settings sel;
  ts_select_settings_init(&sel);
  sel.n_init = N_INIT;
  sel.n_local = N_LOCAL;
  sel.k = K;
  return check_session(g_model, MAX_CTX, 64, &sel);
}

int main(void) {
  ts_session* s;
  int32_t id = -1;
  int64_t first = 0;
  size_t needed = 0;
  int64_t cached = 0, total = 0;
  static const char q[] = "Who is Maren, and what does she keep?";

  g_model = check_load_default_model();
  g_doc = check_read_text(TS_DOCS_DIR "/short-story.txt", 1600, &g_doc_len);
  if (!CHECK(g_doc != NULL)) return check_done();
  while (g_doc_len > 0 && isspace((unsigned char)g_doc[g_doc_len - 1])) g_doc[--g_doc_len] = '\0';

  s = make_session();
  CHECK_OK(ts_session_add_document(s, "story", g_doc, g_doc_len, &id));
  CHECK(id == 0);
  CHECK_OK(ts_session_add_document(s, "note", g_note, strlen(g_note), &id));
  CHECK(id == 1);
  CHECK_ERR(ts_session_get_document_tokens(s, 0, &first, NULL, 0, &needed), TS_ERR_INVALID_ARG, "prefill|document");
  CHECK_OK(ts_session_set_recording(s, 1));
  /* Documents are read before the question arrives; then only the question is new. */
  CHECK_OK(ts_session_prefill(s, NULL, NULL));
  CHECK_OK(ts_session_get_document_tokens(s, 0, &first, NULL, 0, &needed));
  CHECK(needed > 300);
  cached = n_cached(s);
  CHECK(cached > (int64_t)needed);
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, q, strlen(q)));
  CHECK_OK(ts_session_prefill(s, on_progress, &total));
  CHECK(total > 0 && total < 64);
  CHECK(n_cached(s) > cached && n_cached(s) <= cached + total);
  CHECK(strcmp(last_message(s), q) == 0); /* the message without its documents */

  test_selection(s);
  test_counts(s);
  test_binned_counts(s);
  test_binned_scores(s);
  test_documents(s);
  test_during_answer(s);
  test_dense_and_off(s);
  CHECK_ERR(ts_session_set_recording(NULL, 1), TS_ERR_INVALID_ARG, "session");

  ts_session_free(s);
  free(g_doc);
  ts_model_free(g_model);
  return check_done();
}
