/* Version, status strings, ts_last_error() (per thread) and the *_init() defaults. No model. */
#include "check.h"

#include <pthread.h>

static void test_version(void) {
  char expected[32];
  CHECK(ts_version_number() == TS_VERSION_NUMBER);
  snprintf(expected, sizeof expected, "%d.%d.%d", TS_VERSION_MAJOR, TS_VERSION_MINOR, TS_VERSION_PATCH);
  CHECK(ts_version_string() != NULL);
  CHECK(ts_version_string() && strcmp(ts_version_string(), expected) == 0);
}

/* Every status has a distinct string naming its enum constant; unknown codes still get one. */
static void test_status_strings(void) {
  static const char* const names[] = {"TS_OK", "TS_ERR_INVALID_ARG", "TS_ERR_IO", "TS_ERR_FORMAT",
                                      "TS_ERR_UNSUPPORTED", "TS_ERR_OUT_OF_MEMORY", "TS_ERR_CONTEXT_FULL",
                                      "TS_CANCELLED", "TS_TRUNCATED", "TS_ERR_INTERNAL"};
  const int odd[] = {-1, 10, 11, 100, 0x7fffffff};
  int i, j;
  for (i = 0; i <= (int)TS_ERR_INTERNAL; ++i) {
    const char* s = ts_status_string((ts_status)i);
    CHECK(s != NULL);
    if (!s) continue;
    CHECK(s[0] != '\0');
    /* "TS_ERR_IO: input/output error": the constant's name, then ':' or the end. */
    CHECK(strncmp(s, names[i], strlen(names[i])) == 0 && (s[strlen(names[i])] == ':' || s[strlen(names[i])] == '\0'));
    for (j = 0; j < i; ++j) CHECK(strcmp(s, ts_status_string((ts_status)j)) != 0);
  }
  for (i = 0; i < (int)(sizeof odd / sizeof odd[0]); ++i) {
    const char* s = ts_status_string((ts_status)odd[i]);
    CHECK(s != NULL);
    CHECK(s && s[0] != '\0');
  }
}

/* A thread's ts_last_error() starts empty and is not changed by another thread's failure. */
static void* other_thread(void* arg) {
  ts_model* m = (ts_model*)&m; /* garbage that a failed load must overwrite with NULL */
  int* ok = (int*)arg;
  const char* e = ts_last_error();
  ok[0] = e != NULL && e[0] == '\0';
  ok[1] = ts_model_load("/nonexistent/dir/other-thread.gguf", NULL, &m) == TS_ERR_IO && m == NULL;
  e = ts_last_error();
  ok[2] = e != NULL && strstr(e, "other-thread.gguf") != NULL;
  return NULL;
}

static void test_last_error_per_thread(void) {
  ts_model* m = NULL;
  char mine[512];
  int ok[3] = {0, 0, 0};
  pthread_t t;
  CHECK(ts_last_error() != NULL);
  CHECK_ERR(ts_model_load("/nonexistent/dir/main-thread.gguf", NULL, &m), TS_ERR_IO, "main-thread.gguf");
  CHECK(m == NULL);
  check_copy_last_error(mine, sizeof mine);
  CHECK(pthread_create(&t, NULL, other_thread, ok) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(ok[0]); /* fresh thread: "" */
  CHECK(ok[1]);
  CHECK(ok[2]);
  CHECK(strcmp(ts_last_error(), mine) == 0); /* ours is untouched */
  CHECK(strchr(ts_last_error(), '\n') == NULL); /* one line */
}

static void test_model_options_init(void) {
  ts_model_options o;
  memset(&o, 0xA5, sizeof o);
  ts_model_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.progress == NULL && o.progress_user_data == NULL);
  CHECK(o.log == NULL && o.log_user_data == NULL);
  CHECK(o.log_level == TS_LOG_INFO);
}

static void test_select_settings_init(void) {
  ts_select_settings s;
  memset(&s, 0xA5, sizeof s);
  ts_select_settings_init(&s);
  CHECK(s.struct_size == sizeof s);
  CHECK(s.attention == TS_ATTENTION_TOKENSELECT);
  CHECK(s.positions == TS_POSITIONS_REMAP);
  CHECK(s.n_init == 128);
  CHECK(s.n_local == 512);
  CHECK(s.k == 2048);
  CHECK(s.select_cache == 1);
  CHECK(fabsf(s.cache_threshold - 0.9f) < 1e-6f);
}

static void test_session_options_init(void) {
  ts_session_options o;
  memset(&o, 0xA5, sizeof o);
  ts_session_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.n_ctx == 0);
  CHECK(o.n_threads == 0);
  CHECK(o.chunk == 512);
  CHECK(o.select == NULL);
  CHECK(o.system_prompt == NULL);
  CHECK(o.chat_format == NULL);
}

static void test_generate_options_init(void) {
  ts_generate_options o;
  memset(&o, 0xA5, sizeof o);
  ts_generate_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.max_tokens == 512);
  CHECK(fabsf(o.temperature - 0.7f) < 1e-6f);
  CHECK(o.top_k == 40);
  CHECK(fabsf(o.top_p - 0.95f) < 1e-6f);
  CHECK(fabsf(o.min_p - 0.05f) < 1e-6f);
  CHECK(fabsf(o.repeat_penalty - 1.1f) < 1e-6f);
  CHECK(o.repeat_last_n == 64);
  CHECK(o.seed == 42);
  CHECK(o.stop == NULL && o.n_stop == 0);
  CHECK(o.progress == NULL && o.progress_user_data == NULL);
}

/* The documented no-ops. */
static void test_free_null(void) {
  ts_model_free(NULL);
  ts_session_free(NULL);
  CHECK(1);
}

int main(void) {
  test_version();
  test_status_strings();
  test_last_error_per_thread();
  test_model_options_init();
  test_select_settings_init();
  test_session_options_init();
  test_generate_options_init();
  test_free_null();
  return check_done();
}
