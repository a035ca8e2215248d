/*
 * check.h: a tiny assertion harness for the plain-C tests of libtokenselect, plus the fixtures
 * they share (model paths, temporary files, small sessions). Include it first: it sets
 * _POSIX_C_SOURCE for pthreads, mkdtemp and friends under -std=c99.
 *
 *   CHECK(cond)                       a condition
 *   CHECK_STATUS(call, expected)      a call's ts_status
 *   CHECK_ERR(call, expected, words)  a failing call: its status, and ts_last_error() is
 *                                     non-empty and contains one of `words` ("a|b|c", any case)
 *
 * Failures print file:line, the call, both status names and ts_last_error(), and are counted;
 * a test ends with `return check_done();` (exit 1 on any failure). check_skip() exits with 77
 * (ctest SKIP_RETURN_CODE) when the default model is missing.
 */
#ifndef TS_CAPI_CHECK_H
#define TS_CAPI_CHECK_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokenselect.h"

#ifndef TS_DEFAULT_MODEL
#define TS_DEFAULT_MODEL "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf"
#endif
#ifndef TS_TEST_DATA
#define TS_TEST_DATA "tests/data"
#endif
#ifndef TS_DOCS_DIR
#define TS_DOCS_DIR "assets/docs"
#endif

static int check_failures = 0;
static int check_count = 0;

/* ------------------------------------------------------------------------------------------ */
/* Assertions                                                                                 */

/* ts_last_error() is borrowed until the next library call, so it is copied before
 * ts_status_string() runs. */
static inline void check_copy_last_error(char* out, size_t size) {
  const char* e = ts_last_error();
  if (e == NULL) e = "(ts_last_error() returned NULL)";
  strncpy(out, e, size - 1);
  out[size - 1] = '\0';
}

static inline const char* check_name(ts_status s) {
  const char* n = ts_status_string(s);
  return n ? n : "(NULL status string)";
}

static inline int check_cond(int ok, const char* text, const char* file, int line) {
  ++check_count;
  if (!ok) {
    ++check_failures;
    fflush(stdout); /* keep the test's own lines in order with the failure */
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, text);
  }
  return ok;
}

static inline int check_status(ts_status got, ts_status expected, const char* call, const char* file, int line) {
  char err[1024];
  ++check_count;
  if (got == expected) return 1;
  check_copy_last_error(err, sizeof err);
  ++check_failures;
  fflush(stdout);
  fprintf(stderr, "%s:%d: %s\n    expected %s\n    got      %s\n    last error: \"%s\"\n", file, line, call,
          check_name(expected), check_name(got), err);
  return 0;
}

/* Case-insensitive: does `hay` contain `needle` (length n)? */
static inline int check_contains_n(const char* hay, const char* needle, size_t n) {
  size_t i, j, len = strlen(hay);
  if (n == 0) return 1;
  for (i = 0; i + n <= len; ++i) {
    for (j = 0; j < n && tolower((unsigned char)hay[i + j]) == tolower((unsigned char)needle[j]); ++j) {
    }
    if (j == n) return 1;
  }
  return 0;
}

/* Does `hay` contain any of the '|'-separated `words`? */
static inline int check_contains_any(const char* hay, const char* words) {
  const char* w = words;
  for (;;) {
    const char* bar = strchr(w, '|');
    size_t n = bar ? (size_t)(bar - w) : strlen(w);
    if (check_contains_n(hay, w, n)) return 1;
    if (!bar) return 0;
    w = bar + 1;
  }
}

static inline int check_error(ts_status got, ts_status expected, const char* words, const char* call,
                              const char* file, int line) {
  char err[1024];
  check_copy_last_error(err, sizeof err);
  if (!check_status(got, expected, call, file, line)) return 0;
  ++check_count;
  if (err[0] == '\0' || !check_contains_any(err, words)) {
    ++check_failures;
    fflush(stdout);
    fprintf(stderr, "%s:%d: %s\n    returned %s as expected, but ts_last_error() = \"%s\" does not mention %s\n",
            file, line, call, check_name(expected), err, words);
    return 0;
  }
  return 1;
}

#define CHECK(cond) check_cond((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_STATUS(call, expected) check_status((call), (expected), #call, __FILE__, __LINE__)
#define CHECK_OK(call) CHECK_STATUS(call, TS_OK)
#define CHECK_ERR(call, expected, words) check_error((call), (expected), (words), #call, __FILE__, __LINE__)

static inline int check_done(void) {
  if (check_failures) {
    fprintf(stderr, "FAILED: %d of %d checks\n", check_failures, check_count);
    return 1;
  }
  printf("OK: %d checks\n", check_count);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Fixtures                                                                                   */

static inline int check_file_exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Exits with ctest's skip code when the default model has not been fetched. */
static inline void check_skip_without_model(void) {
  if (!check_file_exists(TS_DEFAULT_MODEL)) {
    printf("SKIP: %s missing (run packaging/fetch-model.sh)\n", TS_DEFAULT_MODEL);
    exit(77);
  }
}

/* Loads the default model or exits: every later check would fail anyway. */
static inline ts_model* check_load_default_model(void) {
  ts_model* model = NULL;
  check_skip_without_model();
  if (!CHECK_OK(ts_model_load(TS_DEFAULT_MODEL, NULL, &model)) || model == NULL) {
    check_done();
    exit(1);
  }
  return model;
}

/* A small session: n_ctx tokens, 2 threads, `chunk` (0: default) and optional select settings. */
static inline ts_session* check_session(const ts_model* model, int64_t n_ctx, int32_t chunk,
                                        const ts_select_settings* select) {
  ts_session_options o;
  ts_session* s = NULL;
  ts_session_options_init(&o);
  o.n_ctx = n_ctx;
  o.n_threads = 2;
  if (chunk > 0) o.chunk = chunk;
  o.select = select;
  if (!CHECK_OK(ts_session_create(model, &o, &s)) || s == NULL) {
    check_done();
    exit(1);
  }
  return s;
}

/* Greedy, short, reproducible generation options. */
static inline ts_generate_options check_greedy(int32_t max_tokens) {
  ts_generate_options g;
  ts_generate_options_init(&g);
  g.max_tokens = max_tokens;
  g.temperature = 0.0f;
  return g;
}

/* Reads up to `max` bytes of a file, cut back to the last newline (so ASCII/UTF-8 text stays
 * whole); malloc'd and NUL-terminated, NULL on error. */
static inline char* check_read_text(const char* path, size_t max, size_t* len) {
  FILE* f = fopen(path, "rb");
  char* buf;
  size_t n;
  if (!f) return NULL;
  buf = (char*)malloc(max + 1);
  n = fread(buf, 1, max, f);
  fclose(f);
  while (n == max && n > 0 && buf[n - 1] != '\n') --n;
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Writes `n` bytes to `path`; 1 on success. */
static inline int check_write_file(const char* path, const void* data, size_t n) {
  FILE* f = fopen(path, "wb");
  int ok;
  if (!f) return 0;
  ok = fwrite(data, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

/* Copies the first `n` bytes of `from` to `to` (n = (size_t)-1: all); 1 on success. */
static inline int check_copy_prefix(const char* from, const char* to, size_t n) {
  FILE* f = fopen(from, "rb");
  char* buf;
  size_t got;
  int ok;
  long size;
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n > (size_t)size) n = (size_t)size;
  buf = (char*)malloc(n ? n : 1);
  got = fread(buf, 1, n, f);
  fclose(f);
  ok = got == n && check_write_file(to, buf, n);
  free(buf);
  return ok;
}

static inline long check_file_size(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A fresh temporary directory (static buffer); paths inside it via check_temp_path(). */
static char check_tmpdir[64];

static inline const char* check_temp_dir(void) {
  if (check_tmpdir[0] == '\0') {
    strcpy(check_tmpdir, "/tmp/ts_capi_XXXXXX");
    if (mkdtemp(check_tmpdir) == NULL) {
      perror("mkdtemp");
      exit(1);
    }
  }
  return check_tmpdir;
}

static inline void check_temp_path(char* out, size_t size, const char* name) {
  snprintf(out, size, "%s/%s", check_temp_dir(), name);
}

/* Removes the temporary directory and the files the test put in it. */
static inline void check_temp_cleanup(const char* const* names, size_t n) {
  char path[256];
  size_t i;
  if (check_tmpdir[0] == '\0') return;
  for (i = 0; i < n; ++i) {
    check_temp_path(path, sizeof path, names[i]);
    remove(path);
  }
  rmdir(check_tmpdir);
}

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static inline int check_utf8(const char* s, size_t n) {
  const unsigned char* p = (const unsigned char*)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    unsigned cp;
    size_t j;
    if (len == 0 || i + len > n) return 0;
    cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (j = 1; j < len; ++j) {
      if ((p[i + j] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + j] & 0x3Fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

#endif /* TS_CAPI_CHECK_H */
