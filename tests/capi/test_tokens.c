/* ts_tokenize / ts_detokenize: round trips, flags, the two-call pattern, invalid input, and
 * concurrent use of one model from two threads. */
#include "check.h"

#include <pthread.h>

#define MAX_TOKENS 256

static const char* const texts[] = {
    "Hello, world!",
    "  leading spaces and\ttabs\n\nnew lines ",
    "na\xC3\xAFve caf\xC3\xA9 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82", /* naïve café — 日本語 🙂 */
    "def f(x):\n    return x**2  # 12345\n",
};

/* Tokenizes with the two-call pattern; returns the count (0 on failure). */
static size_t tokenize(const ts_model* m, const char* text, size_t len, uint32_t flags, int32_t* out) {
  size_t needed = 0, got = 0;
  if (!CHECK_OK(ts_tokenize(m, text, len, flags, NULL, 0, &needed))) return 0;
  CHECK(needed <= MAX_TOKENS);
  if (needed > MAX_TOKENS) return 0;
  if (!CHECK_OK(ts_tokenize(m, text, len, flags, out, MAX_TOKENS, &got))) return 0;
  CHECK(got == needed);
  return got;
}

/* Detokenizes into a malloc'd string through the two-call pattern. */
static char* detokenize(const ts_model* m, const int32_t* toks, size_t n, uint32_t flags, size_t* len) {
  size_t needed = 0, got = 0;
  char* buf;
  if (!CHECK_OK(ts_detokenize(m, toks, n, flags, NULL, 0, &needed))) return NULL;
  buf = (char*)malloc(needed + 1);
  if (!CHECK_OK(ts_detokenize(m, toks, n, flags, buf, needed + 1, &got))) {
    free(buf);
    return NULL;
  }
  CHECK(got == needed && strlen(buf) == needed);
  *len = needed;
  return buf;
}

static void test_round_trip(const ts_model* m) {
  size_t i;
  int32_t toks[MAX_TOKENS];
  for (i = 0; i < sizeof texts / sizeof texts[0]; ++i) {
    size_t n = tokenize(m, texts[i], strlen(texts[i]), 0, toks), len = 0;
    char* back;
    CHECK(n > 0);
    back = detokenize(m, toks, n, 0, &len);
    CHECK(back && len == strlen(texts[i]) && memcmp(back, texts[i], len) == 0);
    if (back && strcmp(back, texts[i]) != 0) fprintf(stderr, "    \"%s\" came back as \"%s\"\n", texts[i], back);
    free(back);
  }
}

/* Text has an explicit length: no NUL needed, bytes past `len` are not read. */
static void test_explicit_length(const ts_model* m) {
  int32_t a[MAX_TOKENS], b[MAX_TOKENS];
  size_t na = tokenize(m, "Hello", 5, 0, a);
  size_t nb = tokenize(m, "Hello, world!", 5, 0, b);
  CHECK(na > 0 && na == nb && memcmp(a, b, na * sizeof a[0]) == 0);
  CHECK_OK(ts_tokenize(m, "", 0, 0, NULL, 0, &na));
  CHECK(na == 0);
}

static void test_tokenize_two_call(const ts_model* m) {
  int32_t full[MAX_TOKENS], part[MAX_TOKENS];
  const char* t = texts[0];
  size_t n = tokenize(m, t, strlen(t), 0, full), needed = 0;
  CHECK(n >= 3);
  if (n < 3) return;
  CHECK_OK(ts_tokenize(m, t, strlen(t), 0, part, 0, &needed)); /* capacity 0 = query */
  CHECK(needed == n);
  needed = 0;
  CHECK_STATUS(ts_tokenize(m, t, strlen(t), 0, part, n - 1, &needed), TS_TRUNCATED);
  CHECK(needed == n);
  CHECK(memcmp(part, full, (n - 1) * sizeof part[0]) == 0); /* as much as fits */
  CHECK_OK(ts_tokenize(m, t, strlen(t), 0, part, n, &needed));
}

/* "<|im_start|>" is one special token only with PARSE_SPECIAL; it shows as text only with
 * RENDER_SPECIAL. SmolLM2 does not ask for BOS, so ADD_BOS changes nothing. */
static void test_flags(const ts_model* m) {
  const char* t = "<|im_start|>user";
  int32_t plain[MAX_TOKENS], special[MAX_TOKENS], bos[MAX_TOKENS];
  size_t np = tokenize(m, t, strlen(t), 0, plain);
  size_t ns = tokenize(m, t, strlen(t), TS_TOKENIZE_PARSE_SPECIAL, special);
  size_t nb = tokenize(m, "hi", 2, TS_TOKENIZE_ADD_BOS, bos), len = 0;
  int32_t hi[MAX_TOKENS];
  size_t nh = tokenize(m, "hi", 2, 0, hi);
  char* text;
  CHECK(ns == 2 && special[0] == 1); /* <|im_start|> is token 1 */
  CHECK(np > ns);
  CHECK(nb == nh && memcmp(bos, hi, nh * sizeof hi[0]) == 0);

  text = detokenize(m, special, ns, TS_DETOKENIZE_RENDER_SPECIAL, &len);
  CHECK(text && strcmp(text, t) == 0);
  free(text);
  text = detokenize(m, special, ns, 0, &len);
  CHECK(text && strstr(text, "<|im_start|>") == NULL && strstr(text, "user") != NULL);
  free(text);
  text = detokenize(m, plain, np, 0, &len); /* parsed as text: comes back as text */
  CHECK(text && strcmp(text, t) == 0);
  free(text);
}

/* Output is whole UTF-8 even when truncated: "日本語" (9 bytes) in 5 bytes is "日". */
static void test_detokenize_truncation(const ts_model* m) {
  const char* t = "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
  int32_t toks[MAX_TOKENS];
  size_t n = tokenize(m, t, strlen(t), 0, toks), needed = 0;
  char buf[16];
  memset(buf, 'x', sizeof buf);
  CHECK_STATUS(ts_detokenize(m, toks, n, 0, buf, 5, &needed), TS_TRUNCATED);
  CHECK(needed == 9);
  CHECK(memchr(buf, '\0', 5) != NULL);
  CHECK(strcmp(buf, "\xE6\x97\xA5") == 0);
  CHECK_STATUS(ts_detokenize(m, toks, n, 0, buf, 9, &needed), TS_TRUNCATED); /* no room for the NUL */
  CHECK(strcmp(buf, "\xE6\x97\xA5\xE6\x9C\xAC") == 0);
  CHECK_OK(ts_detokenize(m, toks, n, 0, buf, 10, &needed));
  CHECK(strcmp(buf, t) == 0);
}

/* Invalid UTF-8 in: encoded byte-wise; out: U+FFFD, never invalid UTF-8. */
static void test_invalid_utf8(const ts_model* m) {
  const char* t = "ab\xFF\xFE" "cd\xC3";
  int32_t toks[MAX_TOKENS];
  size_t n = tokenize(m, t, strlen(t), 0, toks), len = 0;
  char* text;
  CHECK(n > 0);
  text = detokenize(m, toks, n, 0, &len);
  CHECK(text && check_utf8(text, len));
  CHECK(text && strstr(text, "\xEF\xBF\xBD") != NULL);
  CHECK(text && strncmp(text, "ab", 2) == 0);
  free(text);
}

static void test_bad_tokens(const ts_model* m) {
  int32_t bad[2] = {15, 49152}; /* n_vocab is 49152 */
  char buf[32];
  size_t needed = 777;
  CHECK_ERR(ts_detokenize(m, bad, 2, 0, buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "49152|token|vocab");
  CHECK(needed == 777);
  bad[1] = -1;
  CHECK_ERR(ts_detokenize(m, bad, 2, 0, buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "-1|token|vocab");
  CHECK_ERR(ts_detokenize(m, NULL, 2, 0, buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "tokens");
  CHECK_ERR(ts_tokenize(m, NULL, 5, 0, NULL, 0, &needed), TS_ERR_INVALID_ARG, "text");
  CHECK_ERR(ts_tokenize(NULL, "hi", 2, 0, NULL, 0, &needed), TS_ERR_INVALID_ARG, "model");
  CHECK_ERR(ts_detokenize(NULL, bad, 1, 0, buf, sizeof buf, &needed), TS_ERR_INVALID_ARG, "model");
}

/* A model is usable from several threads at once. */
typedef struct worker {
  const ts_model* m;
  int mismatches;
} worker;

static void* tokenize_loop(void* arg) {
  worker* w = (worker*)arg;
  int32_t ref[MAX_TOKENS], toks[MAX_TOKENS];
  size_t nref = 0, n = 0, i;
  char buf[256];
  ts_tokenize(w->m, texts[2], strlen(texts[2]), 0, ref, MAX_TOKENS, &nref);
  for (i = 0; i < 200; ++i) {
    const char* t = texts[i % 4];
    if (ts_tokenize(w->m, t, strlen(t), 0, toks, MAX_TOKENS, &n) != TS_OK) ++w->mismatches;
    if (ts_detokenize(w->m, toks, n, 0, buf, sizeof buf, &n) != TS_OK || strcmp(buf, t) != 0) ++w->mismatches;
    if (ts_tokenize(w->m, texts[2], strlen(texts[2]), 0, toks, MAX_TOKENS, &n) != TS_OK || n != nref ||
        memcmp(toks, ref, n * sizeof toks[0]) != 0)
      ++w->mismatches;
  }
  return NULL;
}

static void test_threads(const ts_model* m) {
  worker w[2] = {{NULL, 0}, {NULL, 0}};
  pthread_t t[2];
  int i;
  for (i = 0; i < 2; ++i) {
    w[i].m = m;
    CHECK(pthread_create(&t[i], NULL, tokenize_loop, &w[i]) == 0);
  }
  for (i = 0; i < 2; ++i) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(w[0].mismatches == 0 && w[1].mismatches == 0);
}

int main(void) {
  ts_model* m = check_load_default_model();
  test_round_trip(m);
  test_explicit_length(m);
  test_tokenize_two_call(m);
  test_flags(m);
  test_detokenize_truncation(m);
  test_invalid_utf8(m);
  test_bad_tokens(m);
  test_threads(m);
  ts_model_free(m);
  return check_done();
}
