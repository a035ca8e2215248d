/* ts_session_save / ts_session_load: a round trip gives the same greedy continuation; bad,
 * truncated, foreign-model and too-large files are refused and leave the session unchanged. */
#include "check.h"

#include <dirent.h>

#define N_GEN 8
#define MAX_CTX 2048

static ts_model* g_model;
static const char g_doc[] = "Apples are red. Bananas are yellow. Grapes are purple or green.";
static const char* const g_files[] = {"state.tss", "truncated.tss", "garbage.tss", "qwen.tss"};
static char g_state[256], g_truncated[256], g_garbage[256], g_qwen[256];

typedef struct snapshot {
  int32_t tokens[MAX_CTX];
  size_t n_tokens;
  int32_t n_messages;
  ts_select_settings select;
} snapshot;

static void take(const ts_session* s, snapshot* snap) {
  CHECK_OK(ts_session_get_tokens(s, snap->tokens, MAX_CTX, &snap->n_tokens));
  CHECK_OK(ts_session_message_count(s, &snap->n_messages));
  ts_select_settings_init(&snap->select);
  CHECK_OK(ts_session_get_select(s, &snap->select));
}

static int same(const snapshot* a, const snapshot* b) {
  return a->n_tokens == b->n_tokens && memcmp(a->tokens, b->tokens, a->n_tokens * sizeof a->tokens[0]) == 0 &&
         a->n_messages == b->n_messages && memcmp(&a->select, &b->select, sizeof a->select) == 0;
}

/* Document 0 sits at the same place, with the same offsets, in both sessions. */
static int same_document(const ts_session* a, const ts_session* b) {
  int64_t fa = -1, fb = -2;
  uint64_t oa[64], ob[64];
  size_t na = 0, nb = 0;
  CHECK_OK(ts_session_get_document_tokens(a, 0, &fa, oa, 64, &na));
  CHECK_OK(ts_session_get_document_tokens(b, 0, &fb, ob, 64, &nb));
  return na > 0 && na == nb && na <= 64 && fa == fb && memcmp(oa, ob, na * sizeof oa[0]) == 0;
}

/* A greedy continuation of N_GEN tokens. */
typedef struct answer {
  int32_t tokens[N_GEN + 1];
  size_t n;
} answer;

static int32_t collect(const char* utf8, size_t len, int32_t token, void* user) {
  answer* a = (answer*)user;
  (void)utf8, (void)len;
  if (token >= 0 && a->n < N_GEN + 1) a->tokens[a->n++] = token;
  return TS_CONTINUE;
}

static answer generate(ts_session* s) {
  ts_generate_options g = check_greedy(N_GEN);
  answer a;
  memset(&a, 0, sizeof a);
  CHECK_OK(ts_session_generate(s, &g, collect, &a, NULL));
  CHECK(a.n > 0);
  return a;
}

static int same_answer(const answer* a, const answer* b) {
  return a->n == b->n && memcmp(a->tokens, b->tokens, a->n * sizeof a->tokens[0]) == 0;
}

/* Files in the temporary directory: a save leaves no temporary file behind. */
static int files_in_temp_dir(void) {
  DIR* d = opendir(check_temp_dir());
  struct dirent* e;
  int n = 0;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* Non-default settings, so the file has to carry them. */
static ts_session* make_session(void) {
  ts_select_settings sel;
  ts_session* s = check_session(g_model, MAX_CTX, 0, NULL);
  ts_select_settings_init(&sel);
  sel.k = 1000;
  sel.select_cache = 0;
  sel.cache_threshold = 0.75f;
  CHECK_OK(ts_session_set_select(s, &sel));
  return s;
}

/* Save after prefill, answer; load into a fresh session (default settings) and into the
 * original: both give the same answer from the same state. */
static void test_round_trip(snapshot* saved, answer* first) {
  static const char q[] = "List three fruits.";
  ts_session* a = make_session();
  ts_session* b = check_session(g_model, MAX_CTX, 0, NULL);
  snapshot now;
  answer again;
  CHECK_OK(ts_session_add_document(a, "facts", g_doc, strlen(g_doc), NULL));
  CHECK_OK(ts_session_add_message(a, TS_ROLE_USER, q, strlen(q)));
  CHECK_OK(ts_session_prefill(a, NULL, NULL));
  take(a, saved);
  CHECK_OK(ts_session_save(a, g_state));
  CHECK(files_in_temp_dir() == 1);
  CHECK_OK(ts_session_save(a, g_state)); /* over an existing file */
  CHECK(files_in_temp_dir() == 1);
  CHECK(check_file_size(g_state) > (long)(saved->n_tokens * 23040u / 2)); /* the KV cache is in it */
  *first = generate(a);

  CHECK_OK(ts_session_load(b, g_state));
  take(b, &now);
  CHECK(same(saved, &now));
  CHECK(same_document(a, b)); /* the document's place and offsets came along */
  CHECK(now.select.k == 1000 && now.select.select_cache == 0);
  again = generate(b);
  CHECK(same_answer(first, &again));

  CHECK_OK(ts_session_load(a, g_state)); /* back to before the answer */
  take(a, &now);
  CHECK(same(saved, &now));
  again = generate(a);
  CHECK(same_answer(first, &again));
  ts_session_free(a);
  ts_session_free(b);
}

/* Every refused load leaves the session as it was. */
static void check_refused(ts_session* s, const char* path, ts_status expected, const char* words) {
  snapshot before, after;
  take(s, &before);
  CHECK_ERR(ts_session_load(s, path), expected, words);
  take(s, &after);
  CHECK(same(&before, &after));
}

static void test_bad_files(void) {
  static const char junk[] = "TSS? not a session state, only text.................................";
  ts_session* s = make_session();
  long size = check_file_size(g_state);
  CHECK_OK(ts_session_add_message(s, TS_ROLE_USER, "Hi", 2));
  generate(s); /* some state of its own */

  CHECK(check_copy_prefix(g_state, g_truncated, (size_t)size / 2));
  check_refused(s, g_truncated, TS_ERR_FORMAT, "truncated.tss");
  CHECK(check_copy_prefix(g_state, g_truncated, (size_t)size - 1)); /* one byte short */
  check_refused(s, g_truncated, TS_ERR_FORMAT, "truncated.tss");
  CHECK(check_copy_prefix(g_state, g_truncated, 16)); /* little more than a header */
  check_refused(s, g_truncated, TS_ERR_FORMAT, "truncated.tss");
  CHECK(check_write_file(g_garbage, junk, sizeof junk));
  check_refused(s, g_garbage, TS_ERR_FORMAT, "garbage.tss");
  check_refused(s, "/nonexistent/dir/state.tss", TS_ERR_IO, "/nonexistent/dir/state.tss");

  CHECK_ERR(ts_session_save(s, "/nonexistent/dir/out.tss"), TS_ERR_IO, "/nonexistent/dir/out.tss");
  CHECK_ERR(ts_session_save(s, NULL), TS_ERR_INVALID_ARG, "path");
  CHECK_ERR(ts_session_save(NULL, g_state), TS_ERR_INVALID_ARG, "session");
  check_refused(s, NULL, TS_ERR_INVALID_ARG, "path");
  CHECK_ERR(ts_session_load(NULL, g_state), TS_ERR_INVALID_ARG, "session");
  ts_session_free(s);
}

/* A state fits only a session of the same model with room for its tokens. */
static void test_foreign_and_small(const snapshot* saved) {
  ts_model* qwen = NULL;
  ts_session* q = NULL;
  ts_session* s;
  ts_session* tiny;
  if (CHECK_OK(ts_model_load(TS_TEST_DATA "/models/tiny-qwen2.gguf", NULL, &qwen))) {
    q = check_session(qwen, 256, 0, NULL);
    check_refused(q, g_state, TS_ERR_INVALID_ARG, "model");
    CHECK_OK(ts_session_add_message(q, TS_ROLE_USER, "Hi", 2));
    CHECK_OK(ts_session_prefill(q, NULL, NULL));
    CHECK_OK(ts_session_save(q, g_qwen));
    s = make_session();
    check_refused(s, g_qwen, TS_ERR_INVALID_ARG, "model");
    ts_session_free(s);
    ts_session_free(q);
    ts_model_free(qwen);
  }
  tiny = check_session(g_model, (int64_t)saved->n_tokens - 1, 16, NULL);
  check_refused(tiny, g_state, TS_ERR_CONTEXT_FULL, "n_ctx|context");
  ts_session_free(tiny);
}

int main(void) {
  snapshot* saved = (snapshot*)calloc(1, sizeof *saved);
  answer first;
  g_model = check_load_default_model();
  check_temp_path(g_state, sizeof g_state, g_files[0]);
  check_temp_path(g_truncated, sizeof g_truncated, g_files[1]);
  check_temp_path(g_garbage, sizeof g_garbage, g_files[2]);
  check_temp_path(g_qwen, sizeof g_qwen, g_files[3]);

  test_round_trip(saved, &first);
  test_bad_files();
  test_foreign_and_small(saved);

  check_temp_cleanup(g_files, sizeof g_files / sizeof g_files[0]);
  free(saved);
  ts_model_free(g_model);
  return check_done();
}
