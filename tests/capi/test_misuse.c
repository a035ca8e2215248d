/* Misuse of every function: NULL handles and out-pointers, invalid settings and option
 * struct sizes, prompts that do not fit. Each refusal must name what was wrong. */
#include "check.h"

#include <stddef.h>
#include <sys/wait.h>

static ts_model* g_model;

/* ---- NULL handles -------------------------------------------------------------------------- */

static void test_null_model(void) {
  ts_model_info info;
  ts_session* s = (ts_session*)&info;
  char buf[8];
  int32_t toks[4] = {1, 2, 3, 4};
  size_t needed = 0;
  info.struct_size = sizeof info;
  CHECK_ERR(ts_model_get_info(NULL, &info), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_model_get_metadata(NULL, "general.name", buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_tokenize(NULL, "a", 1, 0, toks, 4, &needed), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_detokenize(NULL, toks, 4, 0, buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_session_create(NULL, NULL, &s), TS_ERR_INVALID_ARG, "model");
  CHECK(s == NULL);
}

/* Every function taking a session refuses NULL, naming the session. */
static void test_null_session(void) {
  ts_session* s = NULL;
  ts_select_settings sel;
  ts_session_stats stats;
  ts_generate_options g = check_greedy(4);
  int32_t reason = TS_STOP_NONE;
  int32_t i32 = 0, toks[4] = {1, 2, 3, 4};
  int64_t first = 0;
  uint64_t u64[4];
  uint32_t u32[4];
  float f[4];
  const float* logits = NULL;
  const char* piece = NULL;
  char buf[8];
  size_t n = 0;
  int32_t role = TS_ROLE_USER;
  const char* w = "session";
  ts_select_settings_init(&sel);
  stats.struct_size = sizeof stats;

  CHECK_ERR(ts_session_reset(s), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_add_document(s, "t", "text", 4, &i32), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_add_message(s, TS_ROLE_USER, "hi", 2), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_message_count(s, &i32), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_message(s, 0, &role, buf, sizeof buf, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_truncate_messages(s, 0), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_prefill(s, NULL, NULL), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, &reason), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_next_token(s, &g, &piece, &n, &i32, &reason), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_end_answer(s), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_prefill_tokens(s, toks, 4, NULL, NULL), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_tokens(s, toks, 4, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_truncate_tokens(s, 0), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_logits(s, &logits, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_select(s, &sel), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_set_select(s, &sel), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_stats(s, &stats), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_reset_stats(s), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_set_recording(s, 1), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_selection(s, 0, toks, f, 4, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_selection_counts(s, u32, 4, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_binned_scores(s, 4, f, 4, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_binned_counts(s, 4, u64, 4, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_get_document_tokens(s, 0, &first, u64, 4, &n), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_save(s, "/tmp/never-written.tss"), TS_ERR_INVALID_ARG, w);
  CHECK_ERR(ts_session_load(s, "/tmp/never-read.tss"), TS_ERR_INVALID_ARG, w);
  ts_session_free(s); /* documented no-op */
}

/* NULL out-pointers and NULL inputs on a real session. */
static void test_null_pointers(ts_session* s) {
  const float* logits = NULL;
  size_t n = 0;
  ts_session_options o;
  CHECK_ERR(ts_session_message_count(s, NULL), TS_ERR_INVALID_ARG, "count");
  CHECK_ERR(ts_session_get_logits(s, NULL, &n), TS_ERR_INVALID_ARG, "logits");
  CHECK_ERR(ts_session_add_message(s, TS_ROLE_USER, NULL, 3), TS_ERR_INVALID_ARG, "text");
  CHECK_ERR(ts_session_add_document(s, "t", NULL, 3, NULL), TS_ERR_INVALID_ARG, "text");
  CHECK_ERR(ts_session_prefill_tokens(s, NULL, 3, NULL, NULL), TS_ERR_INVALID_ARG, "tokens");
  /* A count query needs somewhere to put the count. */
  CHECK_ERR(ts_session_get_tokens(s, NULL, 0, NULL), TS_ERR_INVALID_ARG, "needed");
  CHECK_ERR(ts_model_get_metadata(g_model, "general.name", NULL, 0, NULL), TS_ERR_INVALID_ARG, "needed");
  CHECK_ERR(ts_tokenize(g_model, "a", 1, 0, NULL, 0, NULL), TS_ERR_INVALID_ARG, "needed");
  ts_session_options_init(&o);
  CHECK_ERR(ts_session_create(g_model, &o, NULL), TS_ERR_INVALID_ARG, "out_session|session");
  (void)logits;
}

/* ---- Session options ------------------------------------------------------------------------ */

/* ts_session_create must refuse `o`, naming `words`, and leave *out NULL. */
static void refuse_create(const ts_session_options* o, ts_status expected, const char* words, int line) {
  ts_session* s = (ts_session*)&s;
  if (!check_error(ts_session_create(g_model, o, &s), expected, words, "ts_session_create(model, &o, &s)", __FILE__,
                   line))
    fprintf(stderr, "    (called from line %d)\n", line);
  check_cond(s == NULL, "s == NULL after a failed ts_session_create", __FILE__, line);
  if (s != NULL && s != (ts_session*)&s) ts_session_free(s);
}
#define REFUSE_CREATE(o, expected, words) refuse_create((o), (expected), (words), __LINE__)

static ts_session_options small_options(void) {
  ts_session_options o;
  ts_session_options_init(&o);
  o.n_ctx = 1024;
  o.n_threads = 2;
  return o;
}

static void test_bad_session_options(void) {
  ts_session_options o;
  ts_select_settings sel;

  o = small_options(), o.struct_size = 0;
  REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, "struct_size");
  o = small_options(), o.struct_size = 6; /* ends inside n_ctx */
  REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, "struct_size");
  o = small_options(), o.n_ctx = -1;
  REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, "n_ctx");
  o = small_options(), o.n_threads = -1;
  REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, "n_threads");
  o = small_options(), o.chunk = 0;
  REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, "chunk");
  o = small_options(), o.chunk = -64;
  REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, "chunk");
  o = small_options(), o.chat_format = "klingon";
  REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, "chat_format|klingon");
  /* 2^40 tokens x 23 KB: more KV cache than any machine has. */
  o = small_options(), o.n_ctx = (int64_t)1 << 40;
  REFUSE_CREATE(&o, TS_ERR_OUT_OF_MEMORY, "n_ctx|memory|kv");

#define REFUSE_SELECT(field, value, words)         \
  do {                                             \
    ts_select_settings_init(&sel);                 \
    sel.field = value;                             \
    o = small_options();                           \
    o.select = &sel;                               \
    REFUSE_CREATE(&o, TS_ERR_INVALID_ARG, words);  \
  } while (0)
  REFUSE_SELECT(k, 0, "k must|k (| k |'k'|.k");
  REFUSE_SELECT(n_local, 0, "n_local");
  REFUSE_SELECT(n_local, -5, "n_local");
  REFUSE_SELECT(n_init, -1, "n_init");
  REFUSE_SELECT(cache_threshold, 1.01f, "threshold|tau");
  REFUSE_SELECT(cache_threshold, -0.5f, "threshold|tau");
  REFUSE_SELECT(attention, 9, "attention");
  REFUSE_SELECT(positions, 9, "positions");
  REFUSE_SELECT(struct_size, 0, "struct_size");
#undef REFUSE_SELECT
}

/* Older and newer ts_session_options. */
static void test_session_option_sizes(void) {
  ts_session_options o = small_options();
  ts_select_settings bad;
  ts_session* s = NULL;
  ts_session_stats stats;
  struct {
    ts_session_options o;
    uint64_t future[4];
  } big;
  int32_t count = -1;

  /* Older: n_ctx, n_threads, chunk only; the (invalid) fields past them must not be read. */
  ts_select_settings_init(&bad);
  bad.k = 0;
  o.struct_size = (uint32_t)offsetof(ts_session_options, select);
  o.chunk = 64;
  o.select = &bad;
  o.system_prompt = "SHOULD NOT BE READ";
  o.chat_format = "klingon";
  CHECK_OK(ts_session_create(g_model, &o, &s));
  if (s) {
    stats.struct_size = sizeof stats;
    CHECK_OK(ts_session_get_stats(s, &stats));
    CHECK(stats.n_ctx == 1024); /* inside struct_size: used */
    CHECK_OK(ts_session_message_count(s, &count));
    CHECK(count <= 1);
    ts_session_free(s);
  }

  /* Newer: an unknown tail of garbage is ignored. */
  big.o = small_options();
  memset(big.future, 0xC3, sizeof big.future);
  big.o.struct_size = (uint32_t)sizeof big;
  s = NULL;
  CHECK_OK(ts_session_create(g_model, &big.o, &s));
  ts_session_free(s);

  /* NULL options: the defaults (n_ctx 65536 with TokenSelect: reserved, not used). */
  s = NULL;
  CHECK_OK(ts_session_create(g_model, NULL, &s));
  if (s) {
    stats.struct_size = sizeof stats;
    CHECK_OK(ts_session_get_stats(s, &stats));
    CHECK(stats.n_ctx == 65536 && stats.n_tokens == 0);
    ts_session_free(s);
  }
}

/* ---- Generate options ----------------------------------------------------------------------- */

static int forbidden_calls = 0;
static int32_t forbidden_progress(int64_t done, int64_t total, void* user) {
  (void)done, (void)total, (void)user;
  ++forbidden_calls;
  return TS_CONTINUE;
}

static int32_t count_tokens(const char* utf8, size_t len, int32_t token, void* user) {
  (void)utf8, (void)len;
  if (token >= 0) ++*(int*)user;
  return TS_CONTINUE;
}

static int32_t messages(const ts_session* s) {
  int32_t n = -1;
  CHECK_OK(ts_session_message_count(s, &n));
  return n;
}

static void test_bad_generate_options(ts_session* s) {
  ts_generate_options g;
  const char* stops[2] = {"x", NULL};
  int32_t before;
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Hi", 2));
  before = messages(s);
#define REFUSE_GENERATE(field, value, words)                                        \
  do {                                                                              \
    g = check_greedy(4);                                                            \
    g.field = value;                                                                \
    CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, NULL), TS_ERR_INVALID_ARG, words); \
    CHECK(messages(s) == before); /* no answer appended */                          \
  } while (0)
  REFUSE_GENERATE(struct_size, 0, "struct_size");
  REFUSE_GENERATE(temperature, -1.0f, "temperature");
  REFUSE_GENERATE(top_k, -1, "top_k");
  REFUSE_GENERATE(top_p, 1.5f, "top_p");
  REFUSE_GENERATE(top_p, 0.0f, "top_p");
  REFUSE_GENERATE(min_p, 2.0f, "min_p");
  REFUSE_GENERATE(repeat_penalty, 0.0f, "repeat_penalty");
  REFUSE_GENERATE(n_stop, 2, "stop"); /* stop is NULL */
  g = check_greedy(4);
  g.stop = stops;
  g.n_stop = 2; /* stops[1] is NULL */
  CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "stop");
  CHECK_ERR(ts_session_next_token(s, &g, NULL, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "stop");
#undef REFUSE_GENERATE
}

/* Older ts_generate_options: only max_tokens; the tail (invalid temperature, stop strings that
 * would end at once, a progress callback) must not be read. Newer: garbage tail ignored. */
static void test_generate_option_sizes(ts_session* s) {
  ts_generate_options g;
  const char* stops[2] = {"e", " "};
  struct {
    ts_generate_options g;
    uint64_t future[4];
  } big;
  int32_t reason = TS_STOP_NONE;
  int tokens = 0;

  ts_generate_options_init(&g);
  g.struct_size = (uint32_t)offsetof(ts_generate_options, temperature);
  g.max_tokens = 3;
  g.temperature = -5.0f;
  g.stop = stops;
  g.n_stop = 2;
  g.progress = forbidden_progress;
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Count from one to ten.", 22));
  forbidden_calls = 0;
  CHECK_OK(ts_session_generate(s, &g, count_tokens, &tokens, &reason));
  CHECK(reason == TS_STOP_MAX_TOKENS || reason == TS_STOP_END_OF_GENERATION);
  CHECK(tokens >= 1 && tokens <= 3);
  CHECK(forbidden_calls == 0);

  big.g = check_greedy(3);
  memset(big.future, 0x99, sizeof big.future);
  big.g.struct_size = (uint32_t)sizeof big;
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "And back?", 9));
  CHECK_OK(ts_session_generate(s, &big.g, NULL, NULL, &reason));

  /* NULL options: the defaults. */
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Thanks.", 7));
  CHECK_OK(ts_session_next_token(s, NULL, NULL, NULL, NULL, &reason));
  CHECK_OK(ts_session_end_answer(s));
}

/* Calls in the wrong state. */
static void test_wrong_state(ts_session* s) {
  ts_generate_options g = check_greedy(4);
  CHECK_OK(ts_session_reset(s));
  CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "user");
  CHECK_ERR(ts_session_next_token(s, &g, NULL, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "user");
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Hi", 2));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_ASSISTANT, "Hello!", 6));
  CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "user");
}

/* ---- Prompts that do not fit ----------------------------------------------------------------- */

static void test_context_full(void) {
  ts_session* s = check_session(g_model, 64, 64, NULL);
  char text[2048];
  int32_t toks[200];
  size_t n = 0, cached = 0, i;
  int32_t before;
  ts_generate_options g = check_greedy(4);
  text[0] = '\0';
  for (i = 0; i < 40; ++i) strcat(text, "apple pear ");

  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, text, strlen(text)));
  before = messages(s);
  CHECK_ERR(ts_session_prefill(s, NULL, NULL), TS_ERR_CONTEXT_FULL, "context|n_ctx|64");
  CHECK_OK(ts_session_get_tokens(s, NULL, 0, &cached));
  CHECK(cached == 0);
  CHECK(messages(s) == before);
  CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, NULL), TS_ERR_CONTEXT_FULL, "context|n_ctx|64");
  CHECK(messages(s) == before);

  CHECK_OK(ts_tokenize(g_model, text, strlen(text), 0, toks, 200, &n));
  CHECK_OK(ts_session_prefill_tokens(s, toks, 10, NULL, NULL));
  CHECK_ERR(ts_session_prefill_tokens(s, toks, n, NULL, NULL), TS_ERR_CONTEXT_FULL, "context|n_ctx|64");
  CHECK_OK(ts_session_get_tokens(s, NULL, 0, &cached));
  CHECK(cached == 10);
  ts_session_free(s);
}

/* ---- Calls the header leaves open, run in a child so a crash is reported, not fatal --------- */

static void cancel_null(void) { ts_session_cancel(NULL); }
static void init_null(void) {
  ts_model_options_init(NULL);
  ts_select_settings_init(NULL);
  ts_session_options_init(NULL);
  ts_generate_options_init(NULL);
}

static void survives(void (*fn)(void), const char* what) {
  int status = 0;
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  waitpid(pid, &status, 0);
  if (!check_cond(WIFEXITED(status) && WEXITSTATUS(status) == 0, what, __FILE__, __LINE__))
    fprintf(stderr, "    %s crashed (status %d)\n", what, status);
}

int main(void) {
  ts_session* s;
  g_model = check_load_default_model();
  s = check_session(g_model, 2048, 0, NULL);
  test_null_model();
  test_null_session();
  test_null_pointers(s);
  test_bad_session_options();
  test_session_option_sizes();
  test_bad_generate_options(s);
  test_generate_option_sizes(s);
  test_wrong_state(s);
  test_context_full();
  ts_session_free(s);
  ts_model_free(g_model);
  survives(cancel_null, "ts_session_cancel(NULL)");
  survives(init_null, "ts_*_init(NULL)");
  return check_done();
}
