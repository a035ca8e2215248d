/* ts_session_cancel from a second thread: during a long prefill (rolled back) and during a
 * generation (partial answer kept), a cancel while idle (dropped), and TS_STOP from a progress
 * callback. After each, the session works normally. */
#include "check.h"

#include <pthread.h>

#define MAX_CTX 8192
#define CHUNK 128

static ts_model* g_model;

/* ---- The canceller thread ------------------------------------------------------------------
 * The callback on the working thread calls request(); the canceller wakes, calls
 * ts_session_cancel() and acknowledges; request() waits for that, so the cancel lands before
 * the next chunk or step starts (deterministic, yet from another thread). */

typedef struct canceller {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ts_session* session;
  int requested, done, quit;
  pthread_t thread;
} canceller;

static void* cancel_main(void* arg) {
  canceller* c = (canceller*)arg;
  pthread_mutex_lock(&c->mu);
  while (!c->requested && !c->quit) pthread_cond_wait(&c->cv, &c->mu);
  if (c->requested) {
    ts_session_cancel(c->session);
    c->done = 1;
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void canceller_start(canceller* c, ts_session* s) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->session = s;
  CHECK(pthread_create(&c->thread, NULL, cancel_main, c) == 0);
}

static void canceller_request(canceller* c) {
  pthread_mutex_lock(&c->mu);
  c->requested = 1;
  pthread_cond_broadcast(&c->cv);
  while (!c->done) pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

static void canceller_join(canceller* c) {
  pthread_mutex_lock(&c->mu);
  c->quit = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}

/* ---- Callbacks ----------------------------------------------------------------------------- */

typedef struct prefill_watch {
  canceller* c;
  int calls, stop_on_first, stop_on_last;
  int64_t first_done, last_done, total;
} prefill_watch;

static int32_t on_progress(int64_t done, int64_t total, void* user) {
  prefill_watch* w = (prefill_watch*)user;
  if (w->calls++ == 0) w->first_done = done;
  w->last_done = done;
  w->total = total;
  if (w->stop_on_first || (w->stop_on_last && done == total)) return TS_STOP;
  if (w->c && !w->c->requested) canceller_request(w->c);
  return TS_CONTINUE;
}

typedef struct token_watch {
  canceller* c;
  int cancel_at; /* ask for the cancel at this many tokens (0: never) */
  int32_t tokens[64];
  int n;
  char text[1024];
  size_t len;
} token_watch;

static int32_t on_token(const char* utf8, size_t len, int32_t token, void* user) {
  token_watch* w = (token_watch*)user;
  if (token >= 0 && w->n < 64) w->tokens[w->n++] = token;
  if (w->len + len < sizeof w->text) {
    memcpy(w->text + w->len, utf8, len);
    w->len += len;
    w->text[w->len] = '\0';
  }
  if (w->c && w->n == w->cancel_at && !w->c->requested) canceller_request(w->c);
  return TS_CONTINUE;
}

/* ---- Helpers ------------------------------------------------------------------------------- */

static size_t cached(const ts_session* s, int32_t* out) {
  size_t n = 0;
  CHECK_OK(ts_session_get_tokens(s, out, out ? MAX_CTX : 0, &n));
  return n;
}

static int32_t message_count(const ts_session* s) {
  int32_t n = -1;
  CHECK_OK(ts_session_message_count(s, &n));
  return n;
}

/* Reset, a short question, a greedy 8-token answer: the reference for "works normally". */
static token_watch short_answer(ts_session* s, ts_status expected) {
  ts_generate_options g = check_greedy(8);
  token_watch w;
  int32_t reason = TS_STOP_NONE;
  memset(&w, 0, sizeof w);
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Name a color.", 13));
  CHECK_STATUS(ts_session_generate(s, &g, on_token, &w, &reason), expected);
  if (expected == TS_OK) CHECK(reason == TS_STOP_MAX_TOKENS || reason == TS_STOP_END_OF_GENERATION);
  return w;
}

static int same_tokens(const token_watch* a, const token_watch* b) {
  return a->n == b->n && memcmp(a->tokens, b->tokens, (size_t)a->n * sizeof a->tokens[0]) == 0;
}

/* ---- Tests --------------------------------------------------------------------------------- */

/* A cancel from another thread during a ~3000-token prefill: TS_CANCELLED within a chunk, the
 * cache holding what it shared with the new prompt (see the check below). `edit`: the document and question replace the
 * last question and answer (so the new prompt shares only part of the cache), else they
 * follow them. */
static void test_cancel_prefill(ts_session* s, const token_watch* reference, const char* doc, size_t doc_len,
                                int edit) {
  size_t n_before, n_after;
  int32_t* before = (int32_t*)calloc(MAX_CTX, sizeof *before);
  int32_t* after = (int32_t*)calloc(MAX_CTX, sizeof *after);
  int32_t messages;
  canceller c;
  prefill_watch w;
  token_watch again;

  short_answer(s, TS_OK); /* some state to roll back to */
  n_before = cached(s, before);
  if (edit) CHECK_OK(ts_session_truncate_messages(s, message_count(s) - 2));
  CHECK_OK(ts_session_add_document(s, "genesis", doc, doc_len, NULL));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Who was Noah's father?", 22));
  messages = message_count(s);

  memset(&w, 0, sizeof w);
  w.c = &c;
  canceller_start(&c, s);
  CHECK_ERR(ts_session_prefill(s, on_progress, &w), TS_CANCELLED, "cancel");
  canceller_join(&c);
  CHECK(c.done);
  CHECK(w.total > 2500);                        /* several thousand tokens to run */
  CHECK(w.calls <= 2 && w.last_done < w.total); /* stopped within one more chunk */
  printf("prefill (%s): cancelled after %ld of %ld tokens (%d progress calls)\n", edit ? "edit" : "follow-up",
         (long)w.last_done, (long)w.total, w.calls);
  n_after = cached(s, after);
  /* The header: the cache keeps what it had in common with the new prompt, which is all it had
   * when the prompt only extends it (follow-up), and a prefix of it when the prompt edits it. */
  if (edit) CHECK(n_after < n_before && memcmp(after, before, n_after * sizeof before[0]) == 0);
  else CHECK(n_after == n_before && memcmp(after, before, n_before * sizeof before[0]) == 0);
  if (!edit && n_after != n_before) fprintf(stderr, "    cache held %zu tokens before, %zu after\n", n_before, n_after);
  CHECK(message_count(s) == messages); /* the conversation is as it was */

  again = short_answer(s, TS_OK);
  CHECK(same_tokens(&again, reference));
  free(before);
  free(after);
}

/* A cancel from another thread during generation: TS_CANCELLED, reason CANCELLED, the partial
 * answer (what was streamed) kept as the assistant message. */
static void test_cancel_generation(ts_session* s, const token_watch* reference) {
  ts_generate_options g = check_greedy(48);
  int32_t reason = TS_STOP_NONE;
  token_watch w, again;
  canceller c;
  int32_t before;
  char buf[1024];
  size_t needed = 0;
  int32_t role = TS_ROLE_SYSTEM;

  memset(&w, 0, sizeof w);
  w.c = &c;
  w.cancel_at = 3;
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Tell me a long story about a dragon.", 36));
  before = message_count(s);
  canceller_start(&c, s);
  CHECK_ERR(ts_session_generate(s, &g, on_token, &w, &reason), TS_CANCELLED, "cancel");
  canceller_join(&c);
  CHECK(reason == TS_STOP_CANCELLED);
  printf("generation: cancelled after %d tokens: \"%s\"\n", w.n, w.text);
  CHECK(w.n >= 3 && w.n <= 4); /* within one decode step */
  CHECK(message_count(s) == before + 1);
  CHECK_OK(ts_session_get_message(s, before, &role, buf, sizeof buf, &needed));
  CHECK(role == TS_ROLE_ASSISTANT && strcmp(buf, w.text) == 0);

  again = short_answer(s, TS_OK);
  CHECK(same_tokens(&again, reference));
}

/* A cancel while nothing runs is dropped when the next long call starts. */
static void test_cancel_idle(ts_session* s, const token_watch* reference) {
  token_watch again;
  ts_session_cancel(s);
  again = short_answer(s, TS_OK);
  CHECK(same_tokens(&again, reference));
}

/* TS_STOP from a prefill progress callback cancels and rolls back too. */
static void test_progress_stop(ts_session* s) {
  prefill_watch w;
  ts_generate_options g = check_greedy(4);
  int32_t reason = TS_STOP_NONE;
  size_t doc_len = 0;
  char* doc = check_read_text(TS_DOCS_DIR "/short-story.txt", 2000, &doc_len);
  if (!CHECK(doc != NULL)) return;
  memset(&w, 0, sizeof w);
  w.stop_on_first = 1;
  CHECK_OK(ts_session_reset(s));
  CHECK_OK(ts_session_add_document(s, "story", doc, doc_len, NULL));
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Summarize.", 10));
  CHECK_ERR(ts_session_prefill(s, on_progress, &w), TS_CANCELLED, "cancel|stop");
  CHECK(w.calls == 1);
  CHECK(cached(s, NULL) == 0);

  /* TS_STOP from the last report (everything run) still cancels and rolls back. */
  memset(&w, 0, sizeof w);
  w.stop_on_last = 1;
  CHECK_ERR(ts_session_prefill(s, on_progress, &w), TS_CANCELLED, "cancel|stop");
  CHECK(w.calls >= 1 && w.last_done == w.total);
  CHECK(cached(s, NULL) == 0);

  /* The same through ts_generate_options.progress, when generate has to prefill first. */
  memset(&w, 0, sizeof w);
  w.stop_on_first = 1;
  g.progress = on_progress;
  g.progress_user_data = &w;
  CHECK_ERR(ts_session_generate(s, &g, NULL, NULL, &reason), TS_CANCELLED, "cancel|stop");
  CHECK(reason == TS_STOP_CANCELLED);
  CHECK(w.calls == 1);
  CHECK(cached(s, NULL) == 0);
  free(doc);
}

/* Two sessions of one model answering at once on two threads give the answer one gives alone
 * (the model is shared read-only; each session has its own thread). */
typedef struct parallel {
  ts_session* s;
  token_watch answer;
} parallel;

static void* answer_main(void* arg) {
  parallel* p = (parallel*)arg;
  p->answer = short_answer(p->s, TS_OK);
  return NULL;
}

static void test_two_sessions_at_once(void) {
  ts_session_options o;
  parallel p[2];
  pthread_t t[2];
  token_watch alone;
  int i;
  ts_session_options_init(&o);
  o.n_ctx = 1024;
  o.n_threads = 1;
  for (i = 0; i < 2; ++i) {
    p[i].s = NULL;
    CHECK_OK(ts_session_create(g_model, &o, &p[i].s));
  }
  if (!p[0].s || !p[1].s) return;
  alone = short_answer(p[0].s, TS_OK);
  for (i = 0; i < 2; ++i) CHECK(pthread_create(&t[i], NULL, answer_main, &p[i]) == 0);
  for (i = 0; i < 2; ++i) CHECK(pthread_join(t[i], NULL) == 0);
  for (i = 0; i < 2; ++i) {
    CHECK(same_tokens(&p[i].answer, &alone));
    ts_session_free(p[i].s);
  }
}

int main(void) {
  ts_session* s;
  token_watch reference;
  char* doc;
  size_t doc_len = 0;
  g_model = check_load_default_model();
  s = check_session(g_model, MAX_CTX, CHUNK, NULL);
  reference = short_answer(s, TS_OK);
  CHECK(reference.n > 0);

  doc = check_read_text(TS_DOCS_DIR "/genesis-kjv.txt", 13000, &doc_len);
  if (CHECK(doc != NULL)) {
    test_cancel_prefill(s, &reference, doc, doc_len, 0);
    test_cancel_prefill(s, &reference, doc, doc_len, 1);
  }
  free(doc);
  test_cancel_generation(s, &reference);
  test_cancel_idle(s, &reference);
  test_progress_stop(s);
  test_two_sessions_at_once();

  ts_session_free(s);
  ts_model_free(g_model);
  return check_done();
}
