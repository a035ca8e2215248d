/* Model loading (progress, log, option struct sizes, failures) and the model getters. */
#include "check.h"

#include <stddef.h>

/* ---- Callbacks ---------------------------------------------------------------------------- */

typedef struct progress_log {
  int calls;
  int monotonic; /* 1 while every `done` >= the previous one and <= total */
  int64_t last_done, last_total;
  int stop_after; /* return TS_STOP on this call (0: never; -1: on the last report) */
} progress_log;

static int32_t on_progress(int64_t done, int64_t total, void* user) {
  progress_log* p = (progress_log*)user;
  if (p->calls > 0 && (done < p->last_done || total != p->last_total)) p->monotonic = 0;
  if (done < 0 || done > total) p->monotonic = 0;
  p->last_done = done;
  p->last_total = total;
  ++p->calls;
  if (p->stop_after < 0) return done == total ? TS_STOP : TS_CONTINUE;
  return p->stop_after > 0 && p->calls >= p->stop_after ? TS_STOP : TS_CONTINUE;
}

typedef struct log_record {
  int lines;
  int bad; /* a NULL message, a trailing newline or a level above the one asked for */
  int32_t max_level;
} log_record;

static void on_log(int32_t level, const char* message, void* user) {
  log_record* r = (log_record*)user;
  size_t n = message ? strlen(message) : 0;
  ++r->lines;
  if (!message || (n > 0 && message[n - 1] == '\n') || level > r->max_level || level < TS_LOG_ERROR) ++r->bad;
  if (n == 0) ++r->bad; /* a line says something */
}

/* Called only if a field past the struct_size a caller gave were read. */
static int forbidden_calls = 0;
static void forbidden_log(int32_t level, const char* message, void* user) {
  (void)level, (void)message, (void)user;
  ++forbidden_calls;
}

/* ---- Loading ------------------------------------------------------------------------------ */

static void test_load_with_progress_and_log(void) {
  ts_model_options o;
  progress_log p = {0, 1, 0, 0, 0};
  log_record r = {0, 0, TS_LOG_DEBUG};
  ts_model* m = NULL;
  ts_model_options_init(&o);
  o.progress = on_progress;
  o.progress_user_data = &p;
  o.log = on_log;
  o.log_user_data = &r;
  o.log_level = TS_LOG_DEBUG;
  CHECK_OK(ts_model_load(TS_DEFAULT_MODEL, &o, &m));
  CHECK(m != NULL);
  CHECK(p.calls >= 1);
  CHECK(p.monotonic);
  CHECK(p.last_done == p.last_total); /* the last report is the whole file */
  CHECK(p.last_total > 0 && p.last_total <= check_file_size(TS_DEFAULT_MODEL));
  CHECK(r.bad == 0);
  ts_model_free(m);

  /* log_level ERROR: nothing more detailed arrives. */
  r.lines = r.bad = 0;
  r.max_level = TS_LOG_ERROR;
  o.log_level = TS_LOG_ERROR;
  o.progress = NULL;
  m = NULL;
  CHECK_OK(ts_model_load(TS_DEFAULT_MODEL, &o, &m));
  CHECK(r.bad == 0);
  ts_model_free(m);
}

static void test_load_cancelled_by_progress(void) {
  ts_model_options o;
  progress_log p = {0, 1, 0, 0, 1};
  ts_model* m = (ts_model*)&o; /* garbage the failure must replace with NULL */
  ts_model_options_init(&o);
  o.progress = on_progress;
  o.progress_user_data = &p;
  CHECK_ERR(ts_model_load(TS_DEFAULT_MODEL, &o, &m), TS_CANCELLED, "cancel|stop");
  CHECK(m == NULL);
  CHECK(p.calls == 1);

  /* TS_STOP from the last report (all bytes read) still cancels. */
  memset(&p, 0, sizeof p);
  p.monotonic = 1;
  p.stop_after = -1;
  m = (ts_model*)&o;
  CHECK_ERR(ts_model_load(TS_DEFAULT_MODEL, &o, &m), TS_CANCELLED, "cancel|stop");
  CHECK(m == NULL);
  CHECK(p.calls >= 1 && p.last_done == p.last_total);
}

/* An older caller's struct: only the fields before `log` are read; the rest get defaults. */
static void test_load_older_options(void) {
  ts_model_options o;
  progress_log p = {0, 1, 0, 0, 0};
  ts_model* m = NULL;
  ts_model_options_init(&o);
  o.struct_size = (uint32_t)offsetof(ts_model_options, log);
  o.progress = on_progress;
  o.progress_user_data = &p;
  o.log = forbidden_log;          /* past struct_size: must be ignored */
  o.log_level = TS_LOG_DEBUG;
  forbidden_calls = 0;
  CHECK_OK(ts_model_load(TS_DEFAULT_MODEL, &o, &m));
  CHECK(m != NULL);
  CHECK(p.calls >= 1); /* inside struct_size: used */
  CHECK(forbidden_calls == 0);
  ts_model_free(m);
}

/* A newer caller's struct: the unknown tail (garbage) is ignored. */
static void test_load_newer_options(void) {
  struct {
    ts_model_options o;
    uint64_t future[4];
  } big;
  ts_model* m = NULL;
  ts_model_options_init(&big.o);
  memset(big.future, 0xEE, sizeof big.future);
  big.o.struct_size = (uint32_t)sizeof big;
  CHECK_OK(ts_model_load(TS_DEFAULT_MODEL, &big.o, &m));
  CHECK(m != NULL);
  ts_model_free(m);
}

static void test_load_bad_options(void) {
  ts_model_options o;
  ts_model* m = (ts_model*)&o;
  ts_model_options_init(&o);
  o.struct_size = 0;
  CHECK_ERR(ts_model_load(TS_DEFAULT_MODEL, &o, &m), TS_ERR_INVALID_ARG, "struct_size|options");
  CHECK(m == NULL);
  o.struct_size = 2; /* below the first field's end */
  m = (ts_model*)&o;
  CHECK_ERR(ts_model_load(TS_DEFAULT_MODEL, &o, &m), TS_ERR_INVALID_ARG, "struct_size|options");
  CHECK(m == NULL);
}

/* Failed loads: the out handle is NULL, the message names the file, and the NULL handle is
 * refused by everything that takes a model. */
static void test_load_failures(void) {
  const char* names[] = {"truncated.gguf", "garbage.gguf", "empty.gguf"};
  char truncated[256], garbage[256], empty[256];
  static const char junk[] = "this is not a GGUF file, just some text that is long enough to read";
  ts_model* m = (ts_model*)&names;
  ts_session* s = (ts_session*)&names;
  ts_model_info info;
  int32_t tok[4];
  size_t needed = 0;
  char buf[16];

  CHECK_ERR(ts_model_load("/nonexistent/dir/model.gguf", NULL, &m), TS_ERR_IO, "/nonexistent/dir/model.gguf");
  CHECK(m == NULL);

  check_temp_path(truncated, sizeof truncated, names[0]);
  check_temp_path(garbage, sizeof garbage, names[1]);
  check_temp_path(empty, sizeof empty, names[2]);
  CHECK(check_copy_prefix(TS_DEFAULT_MODEL, truncated, 100000)); /* header + part of the metadata */
  CHECK(check_write_file(garbage, junk, sizeof junk));
  CHECK(check_write_file(empty, "", 0));

  m = (ts_model*)&names;
  CHECK_ERR(ts_model_load(truncated, NULL, &m), TS_ERR_FORMAT, "truncated.gguf");
  CHECK(m == NULL);
  m = (ts_model*)&names;
  CHECK_ERR(ts_model_load(garbage, NULL, &m), TS_ERR_FORMAT, "garbage.gguf");
  CHECK(m == NULL);
  m = (ts_model*)&names;
  CHECK_ERR(ts_model_load(empty, NULL, &m), TS_ERR_FORMAT, "empty.gguf");
  CHECK(m == NULL);

  /* Using the NULL handle a failed load left. */
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CHECK_ERR(ts_model_get_info(m, &info), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_model_get_metadata(m, "general.architecture", buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_tokenize(m, "hi", 2, 0, tok, 4, &needed), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_detokenize(m, tok, 0, 0, buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_session_create(m, NULL, &s), TS_ERR_INVALID_ARG, "model");
  CHECK(s == NULL);
  ts_model_free(m); /* NULL: no-op */

  CHECK_ERR(ts_model_load(NULL, NULL, &m), TS_ERR_INVALID_ARG, "path");
  CHECK_ERR(ts_model_load(TS_DEFAULT_MODEL, NULL, NULL), TS_ERR_INVALID_ARG, "out_model|model");
  check_temp_cleanup(names, 3);
}

/* ---- Getters ------------------------------------------------------------------------------ */

static void test_info(const ts_model* m) {
  ts_model_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CHECK_OK(ts_model_get_info(m, &info));
  CHECK(info.n_vocab == 49152);
  CHECK(info.n_embd == 576);
  CHECK(info.n_layer == 30);
  CHECK(info.n_head == 9);
  CHECK(info.n_head_kv == 3);
  CHECK(info.head_dim == 64);
  CHECK(info.n_ff == 1536);
  CHECK(info.n_ctx_train == 8192);
  CHECK(info.bos_token >= -1 && info.bos_token < info.n_vocab);
  CHECK(info.eos_token >= 0 && info.eos_token < info.n_vocab);
  CHECK(info.n_params > 100000000u && info.n_params < 200000000u); /* 135M */
  CHECK(info.file_size == (uint64_t)check_file_size(TS_DEFAULT_MODEL));
  CHECK(info.kv_bytes_per_token == 23040u); /* README: fp16 K and V, 30 layers x 3 heads x 64 */
  CHECK(info.arch && strcmp(info.arch, "llama") == 0);
  CHECK(info.name && strcmp(info.name, "Smollm2 135M 8k Lc100K Mix1 Ep2") == 0); /* general.name */
  CHECK(info.chat_format && strcmp(info.chat_format, "chatml") == 0);
}

/* Older output struct: only the first struct_size bytes are written. Newer: the tail is left
 * alone. Too small for the first field: refused. */
static void test_info_sizes(const ts_model* m) {
  struct {
    ts_model_info info;
    uint64_t future[2];
  } big;
  ts_model_info small;
  unsigned char sentinel[sizeof small];
  memset(&small, 0x5A, sizeof small);
  small.struct_size = (uint32_t)offsetof(ts_model_info, n_layer); /* n_vocab, n_embd */
  memcpy(sentinel, &small, sizeof small);
  CHECK_OK(ts_model_get_info(m, &small));
  CHECK(small.n_vocab == 49152 && small.n_embd == 576);
  CHECK(memcmp((char*)&small + offsetof(ts_model_info, n_layer), sentinel + offsetof(ts_model_info, n_layer),
               sizeof small - offsetof(ts_model_info, n_layer)) == 0);

  memset(&big, 0, sizeof big);
  big.future[0] = big.future[1] = 0xDEADBEEFCAFEF00Dull;
  big.info.struct_size = (uint32_t)sizeof big;
  CHECK_OK(ts_model_get_info(m, &big.info));
  CHECK(big.info.n_layer == 30 && big.info.arch && strcmp(big.info.arch, "llama") == 0);
  CHECK(big.future[0] == 0xDEADBEEFCAFEF00Dull && big.future[1] == 0xDEADBEEFCAFEF00Dull);

  memset(&small, 0x5A, sizeof small);
  small.struct_size = 4; /* ends before n_vocab */
  memcpy(sentinel, &small, sizeof small);
  CHECK_ERR(ts_model_get_info(m, &small), TS_ERR_INVALID_ARG, "struct_size|info");
  CHECK(memcmp(&small, sentinel, sizeof small) == 0);
  CHECK_ERR(ts_model_get_info(m, NULL), TS_ERR_INVALID_ARG, "info");
}

/* Two-call pattern on text: NULL -> needed; too small -> TS_TRUNCATED, NUL-terminated prefix. */
static void test_metadata(const ts_model* m) {
  char buf[64];
  size_t needed = 0;
  CHECK_OK(ts_model_get_metadata(m, "general.architecture", NULL, 0, &needed));
  CHECK(needed == 5);
  needed = 0;
  CHECK_OK(ts_model_get_metadata(m, "general.architecture", buf, 0, &needed)); /* capacity 0 = query */
  CHECK(needed == 5);
  memset(buf, 'x', sizeof buf);
  CHECK_OK(ts_model_get_metadata(m, "general.architecture", buf, 0, &needed));
  CHECK(buf[0] == 'x'); /* capacity 0: nothing written */
  CHECK_STATUS(ts_model_get_metadata(m, "general.architecture", buf, 3, &needed), TS_TRUNCATED);
  CHECK(needed == 5 && strcmp(buf, "ll") == 0);
  CHECK_STATUS(ts_model_get_metadata(m, "general.architecture", buf, 5, &needed), TS_TRUNCATED); /* no room for NUL */
  CHECK(needed == 5 && strcmp(buf, "llam") == 0);
  CHECK_OK(ts_model_get_metadata(m, "general.architecture", buf, 6, &needed));
  CHECK(needed == 5 && strcmp(buf, "llama") == 0);

  CHECK_OK(ts_model_get_metadata(m, "llama.block_count", buf, sizeof buf, &needed));
  CHECK(strcmp(buf, "30") == 0 && needed == 2);
  CHECK_OK(ts_model_get_metadata(m, "llama.context_length", buf, sizeof buf, &needed));
  CHECK(strcmp(buf, "8192") == 0);
  CHECK_OK(ts_model_get_metadata(m, "tokenizer.ggml.tokens", buf, sizeof buf, &needed));
  CHECK(strcmp(buf, "[49152 items]") == 0);
  CHECK_OK(ts_model_get_metadata(m, "tokenizer.ggml.add_bos_token", buf, sizeof buf, &needed));
  CHECK(strcmp(buf, "false") == 0);
  CHECK_OK(ts_model_get_metadata(m, "tokenizer.chat_template", NULL, 0, &needed));
  CHECK(needed > 100);

  needed = 12345;
  CHECK_ERR(ts_model_get_metadata(m, "no.such.key", buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "no.such.key");
  CHECK(needed == 12345); /* out-parameters unchanged on failure */
  CHECK_ERR(ts_model_get_metadata(m, NULL, buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "key");
}

/* The tiny test models of other kinds load too. */
static void test_other_models(void) {
  const char* paths[] = {TS_TEST_DATA "/models/tiny-qwen2.gguf", TS_TEST_DATA "/models/tiny-llama-spm.gguf"};
  const char* archs[] = {"qwen2", "llama"};
  int i;
  for (i = 0; i < 2; ++i) {
    ts_model* m = NULL;
    ts_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (!CHECK_OK(ts_model_load(paths[i], NULL, &m))) continue;
    CHECK_OK(ts_model_get_info(m, &info));
    CHECK(info.arch && strcmp(info.arch, archs[i]) == 0);
    CHECK(info.n_vocab > 0 && info.n_layer > 0);
    ts_model_free(m);
  }
}

int main(void) {
  ts_model* m;
  check_skip_without_model();
  test_load_with_progress_and_log();
  test_load_cancelled_by_progress();
  test_load_older_options();
  test_load_newer_options();
  test_load_bad_options();
  test_load_failures();
  m = check_load_default_model();
  test_info(m);
  test_info_sizes(m);
  test_metadata(m);
  ts_model_free(m);
  test_other_models();
  return check_done();
}
