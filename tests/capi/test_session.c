/* Sessions on the default model: the conversation (documents, messages), prefill, generate,
 * pull-style next_token, stop strings, callbacks and the busy rule, raw tokens and logits,
 * settings, statistics and reset. Short prompts, greedy, 2 threads. */
#include "check.h"

#include <stddef.h>

#define SYSTEM_PROMPT "You are a helpful assistant."
#define MAX_STREAM 256

static ts_model* g_model;

/* ---- Streaming helpers -------------------------------------------------------------------- */

typedef struct stream {
  char text[8192];
  size_t len;
  int32_t tokens[MAX_STREAM];
  size_t n_tokens;
  int bad_utf8;
  int stop_after;         /* return TS_STOP once this many tokens arrived (0: never) */
  ts_session* busy_check; /* when set: test the busy rule inside the callback */
  int busy_done;
} stream;

static void stream_append(stream* st, const char* utf8, size_t len, int32_t token) {
  if (!check_utf8(utf8, len)) ++st->bad_utf8;
  if (st->len + len < sizeof st->text) {
    memcpy(st->text + st->len, utf8, len);
    st->len += len;
    st->text[st->len] = '\0';
  }
  if (token >= 0 && st->n_tokens < MAX_STREAM) st->tokens[st->n_tokens++] = token;
}

static void busy_rule(ts_session* s);

static int32_t on_token(const char* utf8, size_t len, int32_t token, void* user) {
  stream* st = (stream*)user;
  stream_append(st, utf8, len, token);
  if (st->busy_check && !st->busy_done) {
    st->busy_done = 1;
    busy_rule(st->busy_check);
  }
  return st->stop_after > 0 && (int)st->n_tokens >= st->stop_after ? TS_STOP : TS_CONTINUE;
}

/* Inside a callback: const getters work, everything else is refused as busy. */
static void busy_rule(ts_session* s) {
  static const int32_t busy_token = 42;
  int32_t count = -1;
  size_t needed = 0;
  ts_session_stats stats;
  ts_select_settings sel;
  ts_generate_options g = check_greedy(4);
  stats.struct_size = sizeof stats;
  sel.struct_size = sizeof sel;
  CHECK_OK(ts_session_message_count(s, &count));
  CHECK_OK(ts_session_get_tokens(s, NULL, 0, &needed));
  CHECK(needed > 0);
  CHECK_OK(ts_session_get_stats(s, &stats));
  CHECK_OK(ts_session_get_select(s, &sel));
  CHECK_ERR(ts_session_add_message(s, TS_ROLE_USER, "x", 1), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_add_document(s, NULL, "x", 1, NULL), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_prefill(s, NULL, NULL), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_next_token(s, &g, NULL, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_reset(s), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_truncate_tokens(s, 0), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_truncate_messages(s, 0), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_set_select(s, &sel), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_set_recording(s, 1), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_reset_stats(s), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_end_answer(s), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_load(s, "/nonexistent/busy.tss"), TS_ERR_INVALID_ARG, "busy");
  CHECK_ERR(ts_session_prefill_tokens(s, &busy_token, 1, NULL, NULL), TS_ERR_INVALID_ARG, "busy");
  CHECK_OK(ts_session_message_count(s, &count)); /* still fine after the refusals */
}

typedef struct progress_log {
  int calls, monotonic;
  int64_t last_done, last_total;
  ts_session* busy_check;
} progress_log;

static int32_t on_progress(int64_t done, int64_t total, void* user) {
  progress_log* p = (progress_log*)user;
  if (done < 0 || done > total || (p->calls > 0 && (done < p->last_done || total != p->last_total)))
    p->monotonic = 0;
  p->last_done = done;
  p->last_total = total;
  if (p->busy_check && p->calls == 0)
    CHECK_ERR(ts_session_add_message(p->busy_check, TS_ROLE_USER, "x", 1), TS_ERR_INVALID_ARG, "busy");
  ++p->calls;
  return TS_CONTINUE;
}

/* Message `index` into a static buffer through the two-call pattern. */
static const char* message(const ts_session* s, int32_t index, int32_t* role) {
  static char buf[8192];
  size_t needed = 0, got = 0;
  buf[0] = '\0';
  if (!CHECK_OK(ts_session_get_message(s, index, NULL, NULL, 0, &needed))) return buf;
  if (!CHECK(needed < sizeof buf)) return buf;
  CHECK_OK(ts_session_get_message(s, index, role, buf, sizeof buf, &got));
  CHECK(got == needed && strlen(buf) == needed);
  return buf;
}

static int32_t message_count(const ts_session* s) {
  int32_t n = -1;
  CHECK_OK(ts_session_message_count(s, &n));
  return n;
}

static int64_t n_cached(const ts_session* s) {
  size_t needed = 0;
  CHECK_OK(ts_session_get_tokens(s, NULL, 0, &needed));
  return (int64_t)needed;
}

/* Reset, one user message, greedy answer of up to max_tokens into *st. */
static ts_status ask(ts_session* s, const char* question, int32_t max_tokens, stream* st, int32_t* reason) {
  ts_generate_options g = check_greedy(max_tokens);
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, question, strlen(question)));
  return ts_session_generate(s, &g, on_token, st, reason);
}

/* ---- Tests -------------------------------------------------------------------------------- */

static void test_conversation(ts_session* s) {
  static const char doc[] = "The secret word is 'pelican'.";
  int32_t id = -1;
  int32_t role = TS_ROLE_ASSISTANT;
  size_t needed = 0;
  char small[8];

  CHECK(message_count(s) == 1); /* the system prompt given in the options */
  CHECK(strcmp(message(s, 0, &role), SYSTEM_PROMPT) == 0 && role == TS_ROLE_SYSTEM);

  CHECK_OK(ts_session_add_document(s, "notes", doc, strlen(doc), &id));
  CHECK(id == 0);
  CHECK_OK(ts_session_add_document(s, NULL, "Second.", 7, &id));
  CHECK(id == 1);
  CHECK_OK(ts_session_add_document(s, "no id wanted", "Third.", 6, NULL));
  CHECK(message_count(s) == 1); /* documents are not messages */
  CHECK_ERR(ts_session_add_document(s, "bad", "abc\xFF" "def", 7, &id), TS_ERR_INVALID_ARG, "3|utf");
  CHECK_ERR(ts_session_add_document(s, "nul", "ab\0cd", 5, &id), TS_ERR_INVALID_ARG, "2|nul");
  CHECK(id == 1); /* unchanged on failure */

  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "What is the secret word?", 24));
  CHECK(message_count(s) == 2);
  CHECK(strcmp(message(s, 1, &role), "What is the secret word?") == 0 && role == TS_ROLE_USER);
  CHECK_STATUS(ts_session_get_message(s, 1, NULL, small, sizeof small, &needed), TS_TRUNCATED);
  CHECK(needed == 24 && strcmp(small, "What is") == 0);

  /* Truncated text stays whole UTF-8: "ab\u00e9c" in 4 bytes is "ab". */
  CHECK_OK(ts_session_add_message(s, TS_ROLE_ASSISTANT, "ab\xC3\xA9" "c", 5));
  CHECK_STATUS(ts_session_get_message(s, 2, NULL, small, 4, &needed), TS_TRUNCATED);
  CHECK(needed == 5 && strcmp(small, "ab") == 0);
  CHECK_OK(ts_session_truncate_messages(s, 2));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_ASSISTANT, "Pelican.", 8));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Thanks", 6));
  CHECK(message_count(s) == 4);
  CHECK(strcmp(message(s, 2, &role), "Pelican.") == 0 && role == TS_ROLE_ASSISTANT);
  CHECK_ERR(ts_session_add_message(s, TS_ROLE_SYSTEM, "late", 4), TS_ERR_INVALID_ARG, "system|first");
  CHECK_ERR(ts_session_add_message(s, 7, "x", 1), TS_ERR_INVALID_ARG, "role");
  CHECK_ERR(ts_session_add_message(s, TS_ROLE_USER, "bad \xC3", 5), TS_ERR_INVALID_ARG, "utf");
  CHECK(message_count(s) == 4);

  CHECK_ERR(ts_session_get_message(s, 4, &role, small, sizeof small, &needed), TS_ERR_INVALID_ARG, "index|4");
  CHECK_ERR(ts_session_get_message(s, -1, &role, small, sizeof small, &needed), TS_ERR_INVALID_ARG, "index|-1");

  CHECK_OK(ts_session_truncate_messages(s, 2));
  CHECK(message_count(s) == 2);
  CHECK_ERR(ts_session_truncate_messages(s, -1), TS_ERR_INVALID_ARG, "count");
  CHECK_OK(ts_session_truncate_messages(s, 1));
  /* The last message is the system prompt, not a user message. */
  {
    ts_generate_options g = check_greedy(4);
    CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, NULL), TS_ERR_INVALID_ARG, "user");
  }
  /* With no messages at all, a system message is first again. */
  CHECK_OK(ts_session_truncate_messages(s, 0));
  CHECK(message_count(s) == 0);
  CHECK_OK(ts_session_add_message(s, TS_ROLE_SYSTEM, "Be brief.", 9));
  CHECK(message_count(s) == 1);
  CHECK(strcmp(message(s, 0, &role), "Be brief.") == 0 && role == TS_ROLE_SYSTEM);
  CHECK_OK(ts_session_reset(s));
}

/* Prefill with progress, then a greedy answer appended to the conversation; stats follow. */
static void test_prefill_generate(ts_session* s) {
  static const char q[] = "What is the capital of France? Answer in one word.";
  progress_log p = {0, 1, 0, 0, NULL};
  stream st;
  int32_t reason = TS_STOP_NONE;
  ts_generate_options g = check_greedy(12);
  ts_session_stats stats;
  const float* logits = NULL;
  size_t n_vocab = 0, i;
  int finite = 1;
  int32_t role = TS_ROLE_SYSTEM;
  int32_t before;

  memset(&st, 0, sizeof st);
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_reset_stats(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, q, strlen(q)));
  p.busy_check = s;
  CHECK_OK(ts_session_prefill(s, on_progress, &p));
  CHECK(p.calls >= 1 && p.monotonic && p.last_done == p.last_total && p.last_total > 0);
  CHECK(n_cached(s) == p.last_total); /* the first prefill runs the whole prompt */

  CHECK_OK(ts_session_get_logits(s, &logits, &n_vocab));
  CHECK(logits != NULL && n_vocab == 49152);
  for (i = 0; logits && i < n_vocab; ++i) finite &= isfinite(logits[i]) != 0;
  CHECK(finite);

  before = message_count(s);
  CHECK_OK(ts_session_generate(s, &g, on_token, &st, &reason));
  CHECK(reason == TS_STOP_END_OF_GENERATION || reason == TS_STOP_MAX_TOKENS);
  CHECK(st.n_tokens >= 1 && st.n_tokens <= 12);
  CHECK(st.bad_utf8 == 0);
  CHECK(strstr(st.text, "Paris") != NULL);
  CHECK(message_count(s) == before + 1);
  CHECK(strcmp(message(s, before, &role), st.text) == 0 && role == TS_ROLE_ASSISTANT);

  memset(&stats, 0, sizeof stats);
  stats.struct_size = sizeof stats;
  CHECK_OK(ts_session_get_stats(s, &stats));
  CHECK(stats.n_tokens == n_cached(s));
  CHECK(stats.n_ctx == 4096);
  CHECK(stats.kv_bytes_per_token == 23040u);
  CHECK(stats.kv_bytes_used >= (uint64_t)stats.n_tokens * 23040u && stats.kv_bytes_used <= 4096u * 23040u);
  CHECK(stats.prefill_tokens >= p.last_total && stats.prefill_seconds > 0);
  CHECK(stats.decode_tokens >= (int64_t)st.n_tokens - 1 && stats.decode_seconds > 0);
  CHECK(stats.first_token_seconds > 0);
  CHECK(stats.dense_steps > 0 && stats.selecting_steps == 0); /* a short prompt fits the budget */

  CHECK_OK(ts_session_reset_stats(s));
  CHECK_OK(ts_session_get_stats(s, &stats));
  CHECK(stats.prefill_tokens == 0 && stats.decode_tokens == 0 && stats.dense_steps == 0);
  CHECK(stats.n_tokens == n_cached(s)); /* the cache is not statistics */

  /* The next turn reuses the cached prefix: progress counts only this call's tokens. */
  memset(&p, 0, sizeof p);
  p.monotonic = 1;
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "And of Italy?", 13));
  CHECK_OK(ts_session_prefill(s, on_progress, &p));
  CHECK(p.calls >= 1 && p.monotonic && p.last_total > 0 && p.last_total < stats.n_tokens);
  CHECK(n_cached(s) > stats.n_tokens);
}

/* Older and newer ts_session_stats. */
static void test_stats_sizes(ts_session* s) {
  struct {
    ts_session_stats stats;
    uint64_t future[2];
  } big;
  ts_session_stats small;
  memset(&small, 0x5A, sizeof small);
  small.struct_size = (uint32_t)offsetof(ts_session_stats, n_ctx);
  CHECK_OK(ts_session_get_stats(s, &small));
  CHECK(small.n_tokens == n_cached(s));
  CHECK(small.n_ctx == (int64_t)0x5A5A5A5A5A5A5A5Aull); /* past struct_size: untouched */
  memset(&big, 0, sizeof big);
  big.future[0] = big.future[1] = 0x0123456789ABCDEFull;
  big.stats.struct_size = (uint32_t)sizeof big;
  CHECK_OK(ts_session_get_stats(s, &big.stats));
  CHECK(big.stats.n_ctx == 4096);
  CHECK(big.future[0] == 0x0123456789ABCDEFull && big.future[1] == 0x0123456789ABCDEFull);
  small.struct_size = 4;
  CHECK_ERR(ts_session_get_stats(s, &small), TS_ERR_INVALID_ARG, "struct_size|stats");
  CHECK_ERR(ts_session_get_stats(s, NULL), TS_ERR_INVALID_ARG, "stats");
}

/* Pull-style generation gives the same tokens and text as ts_session_generate (greedy). */
static void test_next_token_matches_generate(ts_session* s, stream* pushed) {
  static const char q[] = "Write one sentence about the sea.";
  ts_generate_options g = check_greedy(16);
  ts_generate_options ignored = check_greedy(1); /* passed after the first call: never read */
  int32_t reason = TS_STOP_NONE;
  stream pulled;
  int32_t before;
  int steps = 0;
  int32_t role = TS_ROLE_SYSTEM;

  memset(pushed, 0, sizeof *pushed);
  CHECK_OK(ask(s, q, 16, pushed, &reason));
  CHECK(reason == TS_STOP_MAX_TOKENS || reason == TS_STOP_END_OF_GENERATION);

  ignored.temperature = -1.0f; /* invalid, were it read */
  memset(&pulled, 0, sizeof pulled);
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, q, strlen(q)));
  before = message_count(s);
  reason = TS_STOP_NONE;
  while (reason == TS_STOP_NONE && steps++ < 40) {
    const char* piece = NULL;
    size_t len = 0;
    int32_t token = -2;
    if (!CHECK_OK(ts_session_next_token(s, steps == 1 ? &g : &ignored, &piece, &len, &token, &reason))) break;
    CHECK(len == 0 || piece != NULL);
    CHECK(token >= -1 && token < 49152);
    stream_append(&pulled, len ? piece : "", len, token);
    if (reason == TS_STOP_NONE) CHECK(message_count(s) == before); /* appended only at the end */
  }
  CHECK(reason == TS_STOP_MAX_TOKENS || reason == TS_STOP_END_OF_GENERATION);
  CHECK(pulled.bad_utf8 == 0);
  CHECK(pulled.n_tokens == pushed->n_tokens &&
        memcmp(pulled.tokens, pushed->tokens, pulled.n_tokens * sizeof pulled.tokens[0]) == 0);
  CHECK(strcmp(pulled.text, pushed->text) == 0);
  if (strcmp(pulled.text, pushed->text) != 0)
    fprintf(stderr, "    generate: \"%s\"\n    next_token: \"%s\"\n", pushed->text, pulled.text);
  CHECK(message_count(s) == before + 1);
  CHECK(strcmp(message(s, before, &role), pushed->text) == 0 && role == TS_ROLE_ASSISTANT);
  /* That answer is over: another needs a new user message first. */
  CHECK_ERR(ts_session_next_token(s, &g, NULL, NULL, NULL, &reason), TS_ERR_INVALID_ARG, "user");
}

/* A stop string from the middle of the known greedy answer ends it there, unprinted. */
static void test_stop_string(ts_session* s, const stream* known) {
  const char* stops[2];
  char stop[8];
  size_t at = 0, i;
  stream st;
  int32_t reason = TS_STOP_NONE;
  ts_generate_options g = check_greedy(16);
  int32_t role = TS_ROLE_SYSTEM;
  /* The first 4-letter run past byte 8 whose first occurrence is there. */
  for (i = 8; i + 4 <= known->len && at == 0; ++i) {
    memcpy(stop, known->text + i, 4);
    stop[4] = '\0';
    if (isalpha((unsigned char)stop[0]) && isalpha((unsigned char)stop[3]) && strstr(known->text, stop) == known->text + i)
      at = i;
  }
  if (!CHECK(at > 0)) return;
  stops[0] = "never appears \xE2\x9C\x93";
  stops[1] = stop;
  g.stop = stops;
  g.n_stop = 2;
  memset(&st, 0, sizeof st);
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Write one sentence about the sea.", 33));
  CHECK_OK(ts_session_generate(s, &g, on_token, &st, &reason));
  CHECK(reason == TS_STOP_STOP_STRING);
  CHECK(st.len == at && strncmp(st.text, known->text, at) == 0);
  CHECK(strcmp(message(s, message_count(s) - 1, &role), st.text) == 0 && role == TS_ROLE_ASSISTANT);
}

/* A callback's TS_STOP ends the answer normally; the partial answer is kept. */
static void test_callback_stop(ts_session* s, const stream* known) {
  stream st;
  int32_t reason = TS_STOP_NONE;
  int32_t role = TS_ROLE_SYSTEM;
  memset(&st, 0, sizeof st);
  st.stop_after = 3;
  CHECK_OK(ask(s, "Write one sentence about the sea.", 16, &st, &reason));
  CHECK(reason == TS_STOP_CALLBACK);
  CHECK(st.n_tokens == 3 && memcmp(st.tokens, known->tokens, 3 * sizeof st.tokens[0]) == 0);
  CHECK(strcmp(message(s, message_count(s) - 1, &role), st.text) == 0 && role == TS_ROLE_ASSISTANT);
}

/* ts_session_end_answer: ends a pull-style answer, keeping its text; a no-op otherwise. */
static void test_end_answer(ts_session* s, const stream* known) {
  ts_generate_options g = check_greedy(16);
  int32_t reason = TS_STOP_END_OF_GENERATION;
  const char* piece = NULL;
  size_t len = 0;
  int32_t token = -1, before;
  int32_t role = TS_ROLE_SYSTEM;
  const char* partial;
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_end_answer(s)); /* none in progress */
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Write one sentence about the sea.", 33));
  before = message_count(s);
  CHECK_OK(ts_session_next_token(s, &g, &piece, &len, &token, &reason));
  CHECK(reason == TS_STOP_NONE && token == known->tokens[0]);
  CHECK_OK(ts_session_next_token(s, NULL, NULL, NULL, NULL, NULL)); /* any out-pointer may be NULL */
  CHECK_OK(ts_session_end_answer(s));
  CHECK(message_count(s) == before + 1);
  partial = message(s, before, &role);
  CHECK(strlen(partial) > 0 && strncmp(partial, known->text, strlen(partial)) == 0);
  CHECK(role == TS_ROLE_ASSISTANT);
  CHECK_OK(ts_session_end_answer(s)); /* again: no-op */
  CHECK(message_count(s) == before + 1);
}

/* The busy rule inside token and progress callbacks (the progress half ran in
 * test_prefill_generate). */
static void test_busy(ts_session* s) {
  stream st;
  int32_t reason = TS_STOP_NONE;
  memset(&st, 0, sizeof st);
  st.busy_check = s;
  CHECK_OK(ask(s, "Say hello.", 4, &st, &reason));
  CHECK(st.busy_done);
  CHECK(message_count(s) == 2 + 1); /* system, user, assistant: the refused calls changed nothing */
}

/* Raw tokens outside the conversation, truncation and logits availability. */
static void test_tokens_and_logits(ts_session* s) {
  static const char t[] = "The quick brown fox jumps over the lazy dog";
  int32_t toks[64], got[64];
  size_t n = 0, needed = 0;
  const float* logits = NULL;
  size_t n_vocab = 0;
  CHECK_OK(ts_session_reset(s));
  CHECK_ERR(ts_session_get_logits(s, &logits, &n_vocab), TS_ERR_INVALID_ARG, "logits|nothing|run");
  CHECK_OK(ts_tokenize(g_model, t, strlen(t), 0, toks, 64, &n));
  CHECK(n >= 8);
  CHECK_OK(ts_session_prefill_tokens(s, toks, n, NULL, NULL));
  CHECK_OK(ts_session_get_tokens(s, got, 64, &needed));
  CHECK(needed == n && memcmp(got, toks, n * sizeof toks[0]) == 0);
  CHECK_STATUS(ts_session_get_tokens(s, got, 3, &needed), TS_TRUNCATED);
  CHECK(needed == n);
  CHECK_OK(ts_session_get_logits(s, &logits, &n_vocab));
  CHECK(logits != NULL && n_vocab == 49152);

  CHECK_OK(ts_session_truncate_tokens(s, 4));
  CHECK(n_cached(s) == 4);
  CHECK_OK(ts_session_get_tokens(s, got, 64, &needed));
  CHECK(needed == 4 && memcmp(got, toks, 4 * sizeof toks[0]) == 0);
  CHECK_ERR(ts_session_get_logits(s, &logits, &n_vocab), TS_ERR_INVALID_ARG, "logits|nothing|run");
  CHECK_ERR(ts_session_truncate_tokens(s, -1), TS_ERR_INVALID_ARG, "-1|n");
  CHECK_OK(ts_session_prefill_tokens(s, toks + 4, n - 4, NULL, NULL));
  CHECK_OK(ts_session_get_tokens(s, got, 64, &needed));
  CHECK(needed == n && memcmp(got, toks, n * sizeof toks[0]) == 0);
  CHECK_OK(ts_session_get_logits(s, &logits, &n_vocab));

  toks[0] = 49152; /* outside the vocabulary: refused, nothing appended */
  CHECK_ERR(ts_session_prefill_tokens(s, toks, 1, NULL, NULL), TS_ERR_INVALID_ARG, "49152|token|vocab");
  CHECK(n_cached(s) == (int64_t)n);
  CHECK_OK(ts_session_truncate_tokens(s, 0));
  CHECK(n_cached(s) == 0);
}

/* A generation that fills the context ends normally with TS_STOP_CONTEXT_FULL. */
static void test_generation_fills_context(void) {
  ts_session* s = check_session(g_model, 4096, 16, NULL);
  ts_session* tight;
  stream st;
  int32_t reason = TS_STOP_NONE;
  ts_generate_options g = check_greedy(64);
  int64_t prompt;
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Tell me a long story about a dragon.", 36));
  CHECK_OK(ts_session_prefill(s, NULL, NULL));
  prompt = n_cached(s);
  ts_session_free(s);

  tight = check_session(g_model, prompt + 4, 16, NULL);
  memset(&st, 0, sizeof st);
  CHECK_OK(ts_session_add_message(tight, TS_ROLE_USER, "Tell me a long story about a dragon.", 36));
  CHECK_OK(ts_session_generate(tight, &g, on_token, &st, &reason));
  CHECK(reason == TS_STOP_CONTEXT_FULL);
  CHECK(st.n_tokens >= 1 && st.n_tokens <= 5);
  CHECK(n_cached(tight) <= prompt + 4);
  ts_session_free(tight);
}

/* key_precision: f32 keys take 1.5x the cache and change the logits in the last bits only;
 * any other value is refused by name. */
static void test_key_precision(void) {
  static const int32_t tokens[] = {504, 2103, 314, 4366, 411, 216, 2520, 28, 253, 4050, 29, 30};
  const size_t n = sizeof tokens / sizeof tokens[0];
  ts_session_options o;
  ts_session *f16 = NULL, *f32 = NULL, *bad = NULL;
  ts_session_stats st16, st32;
  const float *l16 = NULL, *l32 = NULL;
  size_t nv = 0, i, arg16 = 0, arg32 = 0;
  float max_diff = 0.f;
  ts_select_settings full;
  ts_select_settings_init(&full);
  full.attention = TS_ATTENTION_FULL;
  ts_session_options_init(&o);
  CHECK(o.key_precision == TS_KEYS_F16);
  o.n_ctx = 256, o.n_threads = 2, o.select = &full;
  CHECK_OK(ts_session_create(g_model, &o, &f16));
  o.key_precision = TS_KEYS_F32;
  CHECK_OK(ts_session_create(g_model, &o, &f32));
  o.key_precision = 7;
  CHECK_STATUS(ts_session_create(g_model, &o, &bad), TS_ERR_INVALID_ARG);
  CHECK(bad == NULL && strstr(ts_last_error(), "key_precision") != NULL);
  if (!f16 || !f32) return;
  memset(&st16, 0, sizeof st16), memset(&st32, 0, sizeof st32);
  st16.struct_size = st32.struct_size = sizeof st16;
  CHECK_OK(ts_session_get_stats(f16, &st16));
  CHECK_OK(ts_session_get_stats(f32, &st32));
  CHECK(st16.kv_bytes_per_token == 23040u && st32.kv_bytes_per_token == 34560u); /* 30 x 3 x 64 x (2+2 | 4+2) */
  CHECK_OK(ts_session_prefill_tokens(f16, tokens, n, NULL, NULL));
  CHECK_OK(ts_session_prefill_tokens(f32, tokens, n, NULL, NULL));
  CHECK_OK(ts_session_get_logits(f16, &l16, &nv));
  CHECK_OK(ts_session_get_logits(f32, &l32, &nv));
  for (i = 0; i < nv; ++i) {
    const float d = l16[i] > l32[i] ? l16[i] - l32[i] : l32[i] - l16[i];
    if (d > max_diff) max_diff = d;
    if (l16[i] > l16[arg16]) arg16 = i;
    if (l32[i] > l32[arg32]) arg32 = i;
  }
  CHECK(max_diff > 0.f && max_diff < 2.f); /* one rounding of the keys apart */
  CHECK(arg16 == arg32);
  ts_session_free(f16);
  ts_session_free(f32);
}

/* The device option: refused by name when unknown; TS_DEVICE_CPU runs on the CPU; TS_DEVICE_CUDA
 * runs on the GPU or, without one (or a build without CUDA), fails TS_ERR_UNSUPPORTED saying so. */
static void test_device(void) {
  ts_session_options o;
  ts_session *cpu = NULL, *gpu = NULL, *bad = NULL;
  ts_session_stats st;
  ts_status status;
  ts_session_options_init(&o);
  CHECK(o.device == TS_DEVICE_AUTO);
  o.n_ctx = 256, o.n_threads = 2;
  o.device = 9;
  CHECK_STATUS(ts_session_create(g_model, &o, &bad), TS_ERR_INVALID_ARG);
  CHECK(bad == NULL && strstr(ts_last_error(), "device") != NULL);
  o.device = TS_DEVICE_CPU;
  if (!CHECK_OK(ts_session_create(g_model, &o, &cpu))) return;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CHECK_OK(ts_session_get_stats(cpu, &st));
  CHECK(st.device == TS_DEVICE_CPU);
  ts_session_free(cpu);
  o.device = TS_DEVICE_CUDA;
  status = ts_session_create(g_model, &o, &gpu);
  if (status == TS_OK) {
    CHECK_OK(ts_session_get_stats(gpu, &st));
    CHECK(st.device == TS_DEVICE_CUDA);
    ts_session_free(gpu);
  } else {
    CHECK(status == TS_ERR_UNSUPPORTED && gpu == NULL && strstr(ts_last_error(), "CUDA") != NULL);
  }
}

/* ts_session_get_select / set_select: round trip, validation naming the field, struct sizes. */
static void test_select_settings(void) {
  ts_session* s = check_session(g_model, 4096, 0, NULL);
  ts_select_settings a, b, bad;
  struct {
    ts_select_settings sel;
    uint64_t future[2];
  } big;

  ts_select_settings_init(&b);
  CHECK_OK(ts_session_get_select(s, &b));
  CHECK(b.attention == TS_ATTENTION_TOKENSELECT && b.n_init == 128 && b.n_local == 512 && b.k == 2048);

  ts_select_settings_init(&a);
  a.positions = TS_POSITIONS_TRUE;
  a.n_init = 8;
  a.n_local = 600;
  a.k = 100;
  a.select_cache = 0;
  a.cache_threshold = 0.5f;
  CHECK(a.scoring_keys == TS_SCORING_KEYS_CACHED);
  a.scoring_keys = TS_SCORING_KEYS_FP8; /* kept; the CPU session scores its cached keys */
  CHECK_OK(ts_session_set_select(s, &a));
  ts_select_settings_init(&b);
  CHECK_OK(ts_session_get_select(s, &b));
  CHECK(memcmp(&a, &b, sizeof a) == 0);

#define CHECK_BAD_SELECT(field, value, words)                               \
  do {                                                                      \
    bad = a;                                                                \
    bad.field = value;                                                      \
    CHECK_ERR(ts_session_set_select(s, &bad), TS_ERR_INVALID_ARG, words);   \
    ts_select_settings_init(&b);                                            \
    CHECK_OK(ts_session_get_select(s, &b));                                 \
    CHECK(memcmp(&a, &b, sizeof a) == 0); /* unchanged */                   \
  } while (0)
  CHECK_BAD_SELECT(k, 0, "k must|k (| k |'k'|.k");
  CHECK_BAD_SELECT(k, -3, "k must|k (| k |'k'|.k");
  CHECK_BAD_SELECT(n_local, 0, "n_local");
  CHECK_BAD_SELECT(n_init, -1, "n_init");
  CHECK_BAD_SELECT(cache_threshold, 1.5f, "threshold|tau");
  CHECK_BAD_SELECT(cache_threshold, -0.01f, "threshold|tau");
  CHECK_BAD_SELECT(cache_threshold, (float)NAN, "threshold|tau");
  CHECK_BAD_SELECT(attention, 5, "attention");
  CHECK_BAD_SELECT(positions, 5, "positions");
  CHECK_BAD_SELECT(scoring_keys, 2, "scoring_keys");
  CHECK_BAD_SELECT(struct_size, 0, "struct_size|settings");
#undef CHECK_BAD_SELECT

  /* Older caller: only attention and positions given; the rest are defaults. */
  memset(&bad, 0x7F, sizeof bad);
  bad.struct_size = (uint32_t)offsetof(ts_select_settings, n_init);
  bad.attention = TS_ATTENTION_FULL;
  bad.positions = TS_POSITIONS_REMAP;
  CHECK_OK(ts_session_set_select(s, &bad));
  ts_select_settings_init(&b);
  CHECK_OK(ts_session_get_select(s, &b));
  CHECK(b.attention == TS_ATTENTION_FULL && b.n_init == 128 && b.n_local == 512 && b.k == 2048 && b.select_cache == 1);

  /* A 0.3 caller: no scoring_keys (its bytes are garbage here); the cached keys are scored. */
  memset(&bad, 0x7F, sizeof bad);
  ts_select_settings_init(&bad);
  bad.struct_size = (uint32_t)offsetof(ts_select_settings, scoring_keys);
  bad.scoring_keys = 0x7F7F7F7F;
  CHECK_OK(ts_session_set_select(s, &bad));
  ts_select_settings_init(&b);
  CHECK_OK(ts_session_get_select(s, &b));
  CHECK(b.scoring_keys == TS_SCORING_KEYS_CACHED && b.k == 2048);

  /* Newer caller: the tail is ignored on set and untouched on get. */
  ts_select_settings_init(&big.sel);
  big.sel.struct_size = (uint32_t)sizeof big;
  big.sel.k = 333;
  big.future[0] = big.future[1] = 0xFEEDFACEull;
  CHECK_OK(ts_session_set_select(s, &big.sel));
  big.sel.k = 0;
  CHECK_OK(ts_session_get_select(s, &big.sel));
  CHECK(big.sel.k == 333 && big.future[0] == 0xFEEDFACEull && big.future[1] == 0xFEEDFACEull);

  /* Older output struct: only its prefix is written. */
  memset(&b, 0x7F, sizeof b);
  b.struct_size = (uint32_t)offsetof(ts_select_settings, positions);
  CHECK_OK(ts_session_get_select(s, &b));
  CHECK(b.attention == TS_ATTENTION_TOKENSELECT && b.k == 0x7F7F7F7F);
  b.struct_size = 2;
  CHECK_ERR(ts_session_get_select(s, &b), TS_ERR_INVALID_ARG, "struct_size|settings");
  CHECK_ERR(ts_session_get_select(s, NULL), TS_ERR_INVALID_ARG, "settings");

  /* NULL settings mean the defaults (the header's rule for option pointers). */
  CHECK_OK(ts_session_set_select(s, NULL));
  ts_select_settings_init(&b);
  CHECK_OK(ts_session_get_select(s, &b));
  ts_select_settings_init(&a);
  CHECK(memcmp(&a, &b, sizeof a) == 0);

  /* Settings survive a reset. */
  a.k = 77;
  CHECK_OK(ts_session_set_select(s, &a));
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_get_select(s, &b));
  CHECK(b.k == 77);
  ts_session_free(s);
}

/* Reset forgets the conversation and the cache; the system prompt option stays. */
static void test_reset(ts_session* s) {
  int32_t role = TS_ROLE_USER;
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Hi", 2));
  CHECK_OK(ts_session_prefill(s, NULL, NULL));
  CHECK(n_cached(s) > 0);
  CHECK_OK(ts_session_reset(s));
  CHECK(n_cached(s) == 0);
  CHECK(message_count(s) == 1);
  CHECK(strcmp(message(s, 0, &role), SYSTEM_PROMPT) == 0 && role == TS_ROLE_SYSTEM);
}

int main(void) {
  ts_session_options o;
  ts_session* s = NULL;
  stream known;
  g_model = check_load_default_model();
  ts_session_options_init(&o);
  o.n_ctx = 4096;
  o.n_threads = 2;
  o.system_prompt = SYSTEM_PROMPT;
  o.chat_format = "chatml";
  if (!CHECK_OK(ts_session_create(g_model, &o, &s))) return check_done();

  test_conversation(s);
  test_prefill_generate(s);
  test_stats_sizes(s);
  test_next_token_matches_generate(s, &known);
  test_stop_string(s, &known);
  test_callback_stop(s, &known);
  test_end_answer(s, &known);
  test_busy(s);
  test_tokens_and_logits(s);
  test_reset(s);
  ts_session_free(s);

  test_generation_fills_context();
  test_select_settings();
  test_key_precision();
  test_device();
  ts_model_free(g_model);
  return check_done();
}
