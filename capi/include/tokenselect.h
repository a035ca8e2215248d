/*
 * tokenselect.h: the C ABI of libtokenselect, a long-context LLM runtime that attends, in every
 * layer and step, only to the KV-cache tokens that matter (TokenSelect, arXiv 2411.02886).
 *
 * Conventions (they hold for every function below):
 *
 * - Handles are opaque. A ts_model holds immutable weights and the tokenizer; a ts_session holds
 *   one conversation and its KV cache. Many sessions may share one model.
 * - Thread safety: a ts_model may be used from any number of threads at once (every function
 *   taking `const ts_model*` is safe to call concurrently). A ts_session is used by one thread
 *   at a time; the only exception is ts_session_cancel(), which any thread may call at any time
 *   while the session exists. ts_last_error() is per thread.
 * - Callbacks run on the calling thread. Inside a callback, the session's read-only functions
 *   (those taking `const ts_session*`) may be called, e.g. to fetch heatmap data while an
 *   answer streams; any other call on that session returns TS_ERR_INVALID_ARG ("busy").
 * - Every fallible call returns a ts_status. On failure ts_last_error() describes what and
 *   where in one line, and out-parameters are left unchanged unless the function says
 *   otherwise. Nothing ever throws, aborts or calls exit() across this ABI.
 * - Option structs start with `uint32_t struct_size`, are passed by pointer and get their
 *   defaults from the matching *_init() function. They only grow at the end: a struct_size
 *   smaller than this header's (an older caller) gets defaults for the missing fields; a
 *   larger one (a newer caller) is accepted and the unknown tail ignored. Output structs
 *   (ts_model_info, ts_session_stats, ...) follow the same rule: only the first struct_size
 *   bytes are written. A struct_size below the first field's end is TS_ERR_INVALID_ARG.
 * - Only fixed-width types cross the ABI: enum values (ts_role, ts_stop_reason, ...) travel as
 *   int32_t, since C leaves an enum's size to the compiler.
 * - Passing NULL where an options pointer is expected means "the defaults".
 * - Bulk data uses caller-owned buffers and the two-call pattern: pass NULL (or capacity 0) to
 *   learn the required count through `*needed` (TS_OK; `needed` must not be NULL then); a
 *   buffer that is too small gets as much as fits, `*needed` the full count (when `needed` is
 *   not NULL), and TS_TRUNCATED. Text outputs count bytes, are always
 *   whole UTF-8 and NUL-terminated when capacity > 0; `*needed` excludes the NUL, so a buffer
 *   needs `*needed + 1` bytes.
 * - Ownership is written on every pointer: "borrowed" pointers stay owned by the library and
 *   are valid for the stated time; handles returned through out-parameters are owned by the
 *   caller and freed with the named ts_*_free function (which accepts NULL).
 * - Text in and out is UTF-8 with an explicit length (no NUL needed) unless stated otherwise.
 *
 * Versioning: TS_VERSION_* describe this header; ts_version_number() the loaded library. The
 * shared library's SONAME changes with TS_VERSION_MAJOR; new behaviour arrives as new functions,
 * and old ones stay (marked deprecated) until the next major version.
 */
#ifndef TOKENSELECT_H
#define TOKENSELECT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(TS_BUILDING_LIBRARY)
#define TS_API __declspec(dllexport)
#elif defined(_WIN32)
#define TS_API __declspec(dllimport)
#elif defined(__GNUC__)
#define TS_API __attribute__((visibility("default")))
#else
#define TS_API
#endif

/* Marks functions kept for compatibility; the message names the replacement. */
#if defined(__GNUC__) || defined(__clang__)
#define TS_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define TS_DEPRECATED(msg)
#endif

#define TS_VERSION_MAJOR 0
#define TS_VERSION_MINOR 4
#define TS_VERSION_PATCH 0
#define TS_VERSION_NUMBER (TS_VERSION_MAJOR * 1000000 + TS_VERSION_MINOR * 1000 + TS_VERSION_PATCH)

/* ------------------------------------------------------------------------------------------ */
/* Status, errors, version                                                                    */

typedef enum ts_status {
  TS_OK = 0,
  TS_ERR_INVALID_ARG = 1,    /* NULL handle, bad value, bad state ("prefill first") */
  TS_ERR_IO = 2,             /* a file could not be opened, read or written */
  TS_ERR_FORMAT = 3,         /* a malformed GGUF or session-state file */
  TS_ERR_UNSUPPORTED = 4,    /* a valid file using something this build does not implement */
  TS_ERR_OUT_OF_MEMORY = 5,  /* the KV cache or a buffer would not fit in memory */
  TS_ERR_CONTEXT_FULL = 6,   /* the tokens would not fit in the session's context */
  TS_CANCELLED = 7,          /* ts_session_cancel() or a callback's TS_STOP ended the call */
  TS_TRUNCATED = 8,          /* a caller buffer was too small; *needed says how large */
  TS_ERR_INTERNAL = 9        /* a bug: please report it with ts_last_error() */
} ts_status;

/* Static English name of a status ("TS_ERR_IO: input/output error"); never NULL. */
TS_API const char* ts_status_string(ts_status status);

/* The message of the last failing call on this thread, one line naming what and where; "" when
 * none. Borrowed: valid until the next library call on this thread. */
TS_API const char* ts_last_error(void);

/* TS_VERSION_NUMBER of the loaded library, and its "MAJOR.MINOR.PATCH" (static). */
TS_API int32_t ts_version_number(void);
TS_API const char* ts_version_string(void);

/* ------------------------------------------------------------------------------------------ */
/* Callbacks                                                                                  */

/* Callbacks that may stop the work return TS_CONTINUE or TS_STOP. */
#define TS_CONTINUE 0
#define TS_STOP 1

/* Progress of a long call: `done` of `total` units (bytes for model loading, tokens for
 * prefill). Called on the calling thread; return TS_STOP to cancel (the call then returns
 * TS_CANCELLED, even from the last report). */
typedef int32_t (*ts_progress_fn)(int64_t done, int64_t total, void* user_data);

/* One piece of streamed answer text: always whole UTF-8 characters (`len` bytes, not
 * NUL-terminated, borrowed for the duration of the call) and the token that completed it (-1
 * for text flushed at the end). Return TS_STOP to end the answer early. */
typedef int32_t (*ts_token_fn)(const char* utf8, size_t len, int32_t token, void* user_data);

typedef enum ts_log_level { TS_LOG_ERROR = 0, TS_LOG_WARN = 1, TS_LOG_INFO = 2, TS_LOG_DEBUG = 3 } ts_log_level;

/* A log line without a trailing newline (borrowed for the call). It may be called from any thread
 * that uses the model or its sessions, so it must be thread-safe. */
typedef void (*ts_log_fn)(int32_t level, const char* message, void* user_data);

/* ------------------------------------------------------------------------------------------ */
/* Model                                                                                      */

typedef struct ts_model ts_model;

typedef struct ts_model_options {
  uint32_t struct_size;     /* sizeof(ts_model_options) */
  ts_progress_fn progress;  /* bytes of the file read so far; NULL: none */
  void* progress_user_data;
  ts_log_fn log;            /* messages of this model and its sessions; NULL: none */
  void* log_user_data;
  int32_t log_level;        /* a ts_log_level: the most detailed passed to `log` (default INFO) */
} ts_model_options;

TS_API void ts_model_options_init(ts_model_options* options);

/* Maps and validates a GGUF file and reads it into memory (progress in bytes). On failure
 * *out_model is set to NULL. */
TS_API ts_status ts_model_load(const char* path, const ts_model_options* options, ts_model** out_model);

/* Frees the model. Every session created from it must be freed first. NULL is a no-op. */
TS_API void ts_model_free(ts_model* model);

typedef struct ts_model_info {
  uint32_t struct_size;  /* set by the caller: sizeof(ts_model_info) */
  int32_t n_vocab;
  int32_t n_embd;
  int32_t n_layer;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t head_dim;
  int32_t n_ff;
  int32_t n_ctx_train;        /* the context length the model was trained for */
  int32_t bos_token;          /* -1 when none */
  int32_t eos_token;          /* -1 when none */
  uint64_t n_params;          /* number of weights in the file's tensors */
  uint64_t file_size;         /* bytes */
  uint64_t kv_bytes_per_token;/* KV-cache bytes one token takes in a session (all layers) */
  /* Borrowed, NUL-terminated, valid until ts_model_free(): */
  const char* arch;           /* "llama", "qwen2" */
  const char* name;           /* general.name, "" when absent */
  const char* chat_format;    /* the recognised chat template family ("chatml", "llama3",
                                 "llama2"), "" when unrecognised */
} ts_model_info;

TS_API ts_status ts_model_get_info(const ts_model* model, ts_model_info* info);

/* A GGUF metadata value as text (numbers in decimal, booleans "true"/"false", arrays as
 * "[n items]"). TS_ERR_INVALID_ARG when the key is absent. Two-call pattern on `buf`. */
TS_API ts_status ts_model_get_metadata(const ts_model* model, const char* key, char* buf, size_t capacity,
                                       size_t* needed);

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                     */

#define TS_TOKENIZE_ADD_BOS 1u       /* prepend BOS when the model asks for it */
#define TS_TOKENIZE_PARSE_SPECIAL 2u /* "<|im_start|>" etc. become their special tokens */
#define TS_DETOKENIZE_RENDER_SPECIAL 1u /* control tokens appear as their text */

/* Encodes `len` bytes of text. Invalid UTF-8 is encoded byte-wise, never an error. Two-call
 * pattern on `tokens` (counts in tokens). */
TS_API ts_status ts_tokenize(const ts_model* model, const char* text, size_t len, uint32_t flags, int32_t* tokens,
                             size_t capacity, size_t* needed);

/* Decodes tokens into whole UTF-8 (invalid sequences become U+FFFD). Two-call pattern on
 * `buf`. TS_ERR_INVALID_ARG for a token outside the vocabulary. */
TS_API ts_status ts_detokenize(const ts_model* model, const int32_t* tokens, size_t n_tokens, uint32_t flags,
                               char* buf, size_t capacity, size_t* needed);

/* ------------------------------------------------------------------------------------------ */
/* TokenSelect settings                                                                       */

typedef enum ts_attention { TS_ATTENTION_TOKENSELECT = 0, TS_ATTENTION_FULL = 1 } ts_attention;
typedef enum ts_positions { TS_POSITIONS_REMAP = 0, TS_POSITIONS_TRUE = 1 } ts_positions;
typedef enum ts_scoring_keys { TS_SCORING_KEYS_CACHED = 0, TS_SCORING_KEYS_FP8 = 1 } ts_scoring_keys;

typedef struct ts_select_settings {
  uint32_t struct_size;    /* sizeof(ts_select_settings) */
  int32_t attention;       /* a ts_attention: TOKENSELECT (default) or FULL (dense attention) */
  int32_t positions;       /* a ts_positions: RoPE positions of selected keys, REMAP (rank in the
                              attended set, default) or TRUE */
  int32_t n_init;          /* attention sinks always attended (default 128, >= 0) */
  int32_t n_local;         /* most recent tokens always attended (default 512, >= 1) */
  int32_t k;               /* tokens selected per layer per step (default 2048, >= 1) */
  int32_t select_cache;    /* 1: reuse a layer's last selection when the query barely moved */
  float cache_threshold;   /* cosine similarity for that reuse, in [0, 1] (default 0.9) */
  /* since 0.4: the keys the selection scores, a ts_scoring_keys: TS_SCORING_KEYS_CACHED
     (default: the cache's own) or TS_SCORING_KEYS_FP8: on the GPU, an fp8 (e4m3) copy of the
     keys, half the bytes read per candidate, for 25% more KV-cache memory; selections then
     differ from the cached keys' near the k-th vote. The CPU always scores the cache's keys. */
  int32_t scoring_keys;
} ts_select_settings;

TS_API void ts_select_settings_init(ts_select_settings* settings);

/* ------------------------------------------------------------------------------------------ */
/* Session                                                                                    */

typedef struct ts_session ts_session;

typedef struct ts_session_options {
  uint32_t struct_size;  /* sizeof(ts_session_options) */
  int64_t n_ctx;         /* maximum tokens; 0: the trained context (full attention) or 65536
                            (TokenSelect). Address space is reserved, memory used as filled. */
  int32_t n_threads;     /* CPU threads; 0: all hardware threads */
  int32_t chunk;         /* prefill chunk in tokens, >= 1 (default 512); TokenSelect runs
                            chunks of at most n_local tokens */
  const ts_select_settings* select; /* borrowed for the call; NULL: defaults */
  const char* system_prompt; /* NUL-terminated, borrowed for the call; NULL or "": the chat
                                format's default (SmolLM2 and Qwen2 templates have one) */
  const char* chat_format;   /* "chatml", "llama3", "llama2"; NULL or "": from the model */
  /* since 0.2: precision of cached keys (stored before RoPE). TS_KEYS_F16 (default) or
     TS_KEYS_F32: 1.5x the cache; keys then round to fp16 once, after RoPE, as llama.cpp's
     cache holds them, and full-attention logits on the CPU equal llama.cpp's bit for bit. */
  int32_t key_precision;
  /* since 0.3: where the session computes (a ts_device value; 64 bits wide so that it lies past
     0.2's struct size, not in its trailing padding, which an 0.2 caller never sets). TS_DEVICE_AUTO (default): the GPU when the library
     was built with CUDA and a GPU can run the model (head size 64 or 128, fp16 keys), else the
     CPU; TS_DEVICE_CPU; TS_DEVICE_CUDA: the GPU or TS_ERR_UNSUPPORTED saying why not. */
  int64_t device;
} ts_session_options;

typedef enum ts_key_precision { TS_KEYS_F16 = 0, TS_KEYS_F32 = 1 } ts_key_precision;
typedef enum ts_device { TS_DEVICE_AUTO = 0, TS_DEVICE_CPU = 1, TS_DEVICE_CUDA = 2 } ts_device;

TS_API void ts_session_options_init(ts_session_options* options);

/* Creates a session on a model (the model must outlive it). On failure *out_session is NULL.
 * TS_ERR_OUT_OF_MEMORY when the KV cache for n_ctx would not fit in memory. */
TS_API ts_status ts_session_create(const ts_model* model, const ts_session_options* options,
                                   ts_session** out_session);

/* Frees the session. NULL is a no-op. */
TS_API void ts_session_free(ts_session* session);

/* Any thread, any time while the session exists: the running prefill or generation returns
 * TS_CANCELLED within one chunk or decode step. A prefill is rolled back to where it started;
 * a generation keeps the text produced so far. The session stays usable. A cancel requested
 * while nothing runs is dropped when the next long call starts. */
TS_API void ts_session_cancel(ts_session* session);

/* Forgets the conversation and the KV cache (settings stay). */
TS_API ts_status ts_session_reset(ts_session* session);

/* -- Conversation: documents and messages; the library applies the chat template. ---------- */

typedef enum ts_role { TS_ROLE_SYSTEM = 0, TS_ROLE_USER = 1, TS_ROLE_ASSISTANT = 2 } ts_role;

/* Adds a document to the conversation: its text is placed, whole, at the start of the next
 * user message (documents in the order added). `title` (NUL-terminated, may be NULL) is only
 * for the caller's bookkeeping. The text must be valid UTF-8 without NUL bytes
 * (TS_ERR_INVALID_ARG naming the byte offset otherwise). *out_document_id (may be NULL)
 * receives the document's id, 0, 1, 2, ... in the session. */
TS_API ts_status ts_session_add_document(ts_session* session, const char* title, const char* text, size_t len,
                                         int32_t* out_document_id);

/* Appends a message (valid UTF-8) to the conversation. A system message is accepted only as the
 * first message: when the session has a system prompt (its own or the chat format's default),
 * message 0 already is that prompt; ts_session_truncate_messages(s, 0) first to replace it.
 * Nothing is computed until prefill or generate. */
TS_API ts_status ts_session_add_message(ts_session* session, int32_t role, const char* text, size_t len);

/* Number of messages in the conversation (system prompt included when present), and one of
 * them as added, without its documents (two-call pattern on `buf`; *role may be NULL). */
TS_API ts_status ts_session_message_count(const ts_session* session, int32_t* count);
TS_API ts_status ts_session_get_message(const ts_session* session, int32_t index, int32_t* role, char* buf,
                                        size_t capacity, size_t* needed);

/* Keeps the first `count` messages (e.g. drop the last answer to regenerate it). */
TS_API ts_status ts_session_truncate_messages(ts_session* session, int32_t count);

/* Renders the conversation with the generation prompt, reuses the KV cache's common prefix and
 * runs the rest in chunks. Documents not yet followed by a user message are run as the start of
 * that message, so a long document can be read while the question is being typed. Progress in
 * tokens of this call. TS_ERR_CONTEXT_FULL when the prompt does not fit (nothing changes).
 * TS_CANCELLED leaves the conversation unchanged and the KV cache holding what it had in common
 * with the prompt (all it had, when the prompt only extends it); the next prefill goes on from
 * there. */
TS_API ts_status ts_session_prefill(ts_session* session, ts_progress_fn progress, void* user_data);

typedef struct ts_generate_options {
  uint32_t struct_size;   /* sizeof(ts_generate_options) */
  int32_t max_tokens;     /* >= 0 (default 512) */
  float temperature;      /* >= 0; 0: greedy (default 0.7) */
  int32_t top_k;          /* >= 0; 0: off (default 40) */
  float top_p;            /* in (0, 1]; 1: off (default 0.95) */
  float min_p;            /* in [0, 1]; 0: off (default 0.05) */
  float repeat_penalty;   /* > 0; 1: off (default 1.1) */
  int32_t repeat_last_n;  /* >= 0: tokens the penalty looks back (default 64) */
  uint64_t seed;          /* default 42 */
  const char* const* stop;/* borrowed for the call: stop strings (NUL-terminated), or NULL */
  size_t n_stop;
  ts_progress_fn progress; /* prefill progress when generate has to prefill first */
  void* progress_user_data;
} ts_generate_options;

TS_API void ts_generate_options_init(ts_generate_options* options);

typedef enum ts_stop_reason {
  TS_STOP_NONE = 0,              /* still generating (pull-style) */
  TS_STOP_END_OF_GENERATION = 1, /* the model ended its turn */
  TS_STOP_STOP_STRING = 2,
  TS_STOP_MAX_TOKENS = 3,
  TS_STOP_CALLBACK = 4,          /* the token callback returned TS_STOP */
  TS_STOP_CANCELLED = 5,
  TS_STOP_CONTEXT_FULL = 6
} ts_stop_reason;

/* Generates the assistant's answer to the conversation (prefilling first when needed), streams
 * it through `on_token` (may be NULL) and appends it to the conversation as an assistant
 * message, partial when stopped early. The last message must be a user message
 * (TS_ERR_INVALID_ARG otherwise). Per-token selection counts restart at each answer.
 * Returns TS_OK for every normal ending, TS_CANCELLED after ts_session_cancel(); *reason (may
 * be NULL, a ts_stop_reason) says which. */
TS_API ts_status ts_session_generate(ts_session* session, const ts_generate_options* options, ts_token_fn on_token,
                                     void* user_data, int32_t* reason);

/* Pull-style generation for callers that cannot take callbacks: each call produces one token
 * of the answer, starting an answer (prefilling first if needed) when none is in progress;
 * `options` is read only then. *piece (borrowed: valid until the next call on this session)
 * and *len receive the text that token completed (whole UTF-8, may be empty while a character
 * or a possible stop string is incomplete; not NUL-terminated), *token the token (-1 for a
 * final flush). *reason is TS_STOP_NONE while the answer goes on; otherwise it says why it
 * ended, and the answer has been appended to the conversation. Any out-pointer may be NULL.
 * Until the answer ends, calls that change the conversation or the KV cache (generate,
 * prefill, add_message, truncate_*, save, load) return TS_ERR_INVALID_ARG. */
TS_API ts_status ts_session_next_token(ts_session* session, const ts_generate_options* options, const char** piece,
                                       size_t* len, int32_t* token, int32_t* reason);

/* Ends a pull-style answer early (as TS_STOP_CALLBACK), appending the text so far to the
 * conversation; no-op when none is in progress. */
TS_API ts_status ts_session_end_answer(ts_session* session);

/* -- Tokens and logits (evaluation, benchmarks) ---------------------------------------------- */

/* Appends raw tokens to the KV cache, outside the conversation (no template). A later
 * conversation prefill keeps only the part of the cache that matches its prompt. */
TS_API ts_status ts_session_prefill_tokens(ts_session* session, const int32_t* tokens, size_t n_tokens,
                                           ts_progress_fn progress, void* user_data);

/* The tokens in the KV cache (two-call pattern, counts in tokens). */
TS_API ts_status ts_session_get_tokens(const ts_session* session, int32_t* tokens, size_t capacity, size_t* needed);

/* Keeps the first n tokens of the KV cache. */
TS_API ts_status ts_session_truncate_tokens(ts_session* session, int64_t n);

/* The logits after the last token run (n_vocab floats). Borrowed: valid until the next call
 * that changes the session. TS_ERR_INVALID_ARG when nothing has run since the last change. */
TS_API ts_status ts_session_get_logits(const ts_session* session, const float** logits, size_t* n_vocab);

/* -- Settings and statistics ----------------------------------------------------------------- */

/* TokenSelect settings of the session: validated (TS_ERR_INVALID_ARG naming the field), and in
 * effect from the next step; the selection cache is cleared; NULL sets the defaults. A prefill
 * chunk larger than n_local is lowered to n_local. get writes an output struct: set its
 * struct_size first. */
TS_API ts_status ts_session_get_select(const ts_session* session, ts_select_settings* settings);
TS_API ts_status ts_session_set_select(ts_session* session, const ts_select_settings* settings);

typedef struct ts_session_stats {
  uint32_t struct_size;          /* set by the caller: sizeof(ts_session_stats) */
  int64_t n_tokens;              /* tokens in the KV cache */
  int64_t n_ctx;                 /* capacity */
  uint64_t kv_bytes_per_token;
  uint64_t kv_bytes_used;
  int64_t prefill_tokens;        /* since the last ts_session_reset_stats() */
  double prefill_seconds;
  int64_t decode_tokens;
  double decode_seconds;
  double first_token_seconds;    /* last answer: from the start of ts_session_generate (or of a
                                    pull-style answer), any prefill it ran included, to its
                                    first token */
  int64_t select_cache_hits;     /* layer-steps that reused the last selection */
  int64_t select_cache_misses;   /* layer-steps that selected afresh */
  int64_t selecting_steps;       /* layer-steps above the budget (selection in use) */
  int64_t dense_steps;           /* layer-steps that attended everything (CPU; 0 on the GPU) */
  int32_t device;                /* since 0.3: TS_DEVICE_CPU or TS_DEVICE_CUDA */
} ts_session_stats;

TS_API ts_status ts_session_get_stats(const ts_session* session, ts_session_stats* stats);
TS_API ts_status ts_session_reset_stats(ts_session* session);

/* -- Heatmap: what the attention selected ---------------------------------------------------- */

/* Recording costs nothing until enabled; while off, the functions below return empty data. */
TS_API ts_status ts_session_set_recording(ts_session* session, int32_t enabled);

/* Layer `layer`'s selection in the last step: ascending cache positions and their vote scores
 * (either array may be NULL; both hold `capacity` entries). Empty when the layer attended
 * everything. Two-call pattern, counts in positions. */
TS_API ts_status ts_session_get_selection(const ts_session* session, int32_t layer, int32_t* positions,
                                          float* scores, size_t capacity, size_t* needed);

/* Per cached token, how often it was selected (summed over layers and steps) during the
 * current answer: since the start of the last ts_session_generate / pull-style answer, the
 * prefill of its prompt included. Sinks and local-window tokens are attended without being
 * selected, so they count 0. Two-call pattern, counts in tokens. */
TS_API ts_status ts_session_get_selection_counts(const ts_session* session, uint32_t* counts, size_t capacity,
                                                 size_t* needed);

/* Summaries over the cached tokens in n_bins equal bins: per layer, the last step's vote scores
 * summed per bin (n_layer * n_bins floats, row-major by layer), and the per-token counts summed
 * per bin (n_bins values). Two-call pattern, counts in values. */
TS_API ts_status ts_session_get_binned_scores(const ts_session* session, int32_t n_bins, float* scores,
                                              size_t capacity, size_t* needed);
TS_API ts_status ts_session_get_binned_counts(const ts_session* session, int32_t n_bins, uint64_t* counts,
                                              size_t capacity, size_t* needed);

/* Where a document's tokens are: the cache position of its first token, and for each of its
 * tokens the byte offset in the document's text where the token starts (two-call pattern,
 * counts in tokens); token i covers [offsets[i], offsets[i + 1]) and the last one runs to the
 * end of the text. Valid once the document has been prefilled (TS_ERR_INVALID_ARG before). */
TS_API ts_status ts_session_get_document_tokens(const ts_session* session, int32_t document_id, int64_t* first_position,
                                                uint64_t* offsets, size_t capacity, size_t* needed);

/* -- State ----------------------------------------------------------------------------------- */

/* Saves the conversation, KV cache, settings and sampling state to a file (written whole to a
 * temporary file, then renamed). */
TS_API ts_status ts_session_save(const ts_session* session, const char* path);

/* Replaces the session's state with a saved one. The file must come from the same model
 * (TS_ERR_INVALID_ARG otherwise) and fit the session's n_ctx (TS_ERR_CONTEXT_FULL); a bad or
 * truncated file is TS_ERR_FORMAT. On failure the session is unchanged. */
TS_API ts_status ts_session_load(ts_session* session, const char* path);

#ifdef __cplusplus
}
#endif

#endif /* TOKENSELECT_H */
