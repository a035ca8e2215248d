/* An out-of-tree program using an installed libtokenselect (built by tests/capi/abi/consumer.sh,
 * once through pkg-config and once through find_package). Usage: consumer MODEL.gguf */
#include <tokenselect.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char* what, ts_status status) {
  fprintf(stderr, "consumer: %s: %s: %s\n", what, ts_status_string(status), ts_last_error());
  return 1;
}

/* Two-call pattern: the first call (no buffer) may answer TS_OK or TS_TRUNCATED. */
static int sized(ts_status status) { return status == TS_OK || status == TS_TRUNCATED; }

int main(int argc, char** argv) {
  static const char text[] = "Hello from plain C: TokenSelect reads long documents, na\xc3\xafve caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac.";
  ts_model* model = NULL;
  ts_model_info info;
  ts_status status;
  int32_t* tokens = NULL;
  char* back = NULL;
  size_t n_tokens = 0, n_bytes = 0;
  int rc = 1;

  if (argc != 2) {
    fprintf(stderr, "usage: consumer MODEL.gguf\n");
    return 2;
  }
  printf("libtokenselect %s (header %d.%d.%d)\n", ts_version_string(), TS_VERSION_MAJOR, TS_VERSION_MINOR,
         TS_VERSION_PATCH);
  if (ts_version_number() / 1000000 != TS_VERSION_MAJOR) {
    fprintf(stderr, "consumer: library version %d does not match the header's major %d\n", (int)ts_version_number(),
            TS_VERSION_MAJOR);
    return 1;
  }

  if ((status = ts_model_load(argv[1], NULL, &model)) != TS_OK) return fail("ts_model_load", status);
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  if ((status = ts_model_get_info(model, &info)) != TS_OK) {
    rc = fail("ts_model_get_info", status);
    goto done;
  }
  printf("model: \"%s\" (%s, %d layers, vocabulary %d)\n", info.name, info.arch, (int)info.n_layer,
         (int)info.n_vocab);

  /* Tokenize and detokenize back, each with the two-call pattern. */
  if (!sized(status = ts_tokenize(model, text, strlen(text), 0, NULL, 0, &n_tokens)) || n_tokens == 0) {
    rc = fail("ts_tokenize (size)", status);
    goto done;
  }
  tokens = malloc(n_tokens * sizeof *tokens);
  if (!tokens || (status = ts_tokenize(model, text, strlen(text), 0, tokens, n_tokens, &n_tokens)) != TS_OK) {
    rc = fail("ts_tokenize", status);
    goto done;
  }
  if (!sized(status = ts_detokenize(model, tokens, n_tokens, 0, NULL, 0, &n_bytes))) {
    rc = fail("ts_detokenize (size)", status);
    goto done;
  }
  back = malloc(n_bytes + 1);
  if (!back || (status = ts_detokenize(model, tokens, n_tokens, 0, back, n_bytes + 1, &n_bytes)) != TS_OK) {
    rc = fail("ts_detokenize", status);
    goto done;
  }
  printf("%zu tokens -> \"%s\"\n", n_tokens, back);
  if (n_bytes != strlen(text) || strcmp(back, text) != 0) {
    fprintf(stderr, "consumer: round trip changed the text:\n  in:  %s\n  out: %s\n", text, back);
    goto done;
  }
  printf("consumer: OK\n");
  rc = 0;

done:
  free(back);
  free(tokens);
  ts_model_free(model);
  return rc;
}
