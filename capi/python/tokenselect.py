"""Python binding of libtokenselect (capi/include/tokenselect.h), with ctypes only.

    import tokenselect as ts

    with ts.Model.load("assets/models/SmolLM2-135M-Instruct.Q4_1.gguf") as model:
        with model.session(n_ctx=8192, n_threads=4) as s:
            s.add_document(open("assets/docs/short-story.txt").read())
            s.add_message(ts.Role.USER, "What is the dog called?")
            for piece in s.stream(temperature=0):
                print(piece, end="", flush=True)

The library is found through $TOKENSELECT_LIBRARY, then ctypes.util.find_library("tokenselect"),
then next to this file, then in a build tree of the repository (build*/capi/).

Errors: every failing call raises a TokenSelectError subclass carrying `.status` (a Status) and
`.message` (ts_last_error()). TS_CANCELLED (ts_session_cancel(), or a progress callback returning
False) raises `Cancelled`, also a TokenSelectError subclass; for a generation it carries the
partial answer in `.text`. An exception raised inside a callback stops the C call (TS_STOP) and
is re-raised once the call has returned.

Callbacks: progress(done, total) and on_token(piece, token) return False to stop; any other
return value (None included) continues.

Bulk data (tokens, logits, heatmaps) comes back as array.array, which numpy.asarray() takes
without a copy. Threads: a Model may be shared by threads; a Session is used by one thread at a
time, except Session.cancel(), which any thread may call.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import dataclasses
import enum
import glob
import os
import threading
import weakref
from ctypes import (POINTER, byref, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t,
                    c_uint32, c_uint64, c_void_p)
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

__all__ = [
    "VERSION_MAJOR", "VERSION_MINOR", "VERSION_PATCH", "version", "version_number", "library_path",
    "Status", "Role", "StopReason", "Attention", "Positions", "ScoringKeys", "LogLevel",
    "TokenSelectError", "InvalidArgumentError", "FileIOError", "FormatError", "UnsupportedError",
    "OutOfMemoryError", "ContextFullError", "TruncatedError", "InternalError", "Cancelled",
    "ModelInfo", "SelectSettings", "SessionStats", "Answer", "Model", "Session",
]

# The header this binding was written against.
VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH = 0, 4, 0

TOKENIZE_ADD_BOS = 1
TOKENIZE_PARSE_SPECIAL = 2
DETOKENIZE_RENDER_SPECIAL = 1
_CONTINUE, _STOP = 0, 1


class Status(enum.IntEnum):
    OK = 0
    ERR_INVALID_ARG = 1
    ERR_IO = 2
    ERR_FORMAT = 3
    ERR_UNSUPPORTED = 4
    ERR_OUT_OF_MEMORY = 5
    ERR_CONTEXT_FULL = 6
    CANCELLED = 7
    TRUNCATED = 8
    ERR_INTERNAL = 9


class Role(enum.IntEnum):
    SYSTEM = 0
    USER = 1
    ASSISTANT = 2


class StopReason(enum.IntEnum):
    NONE = 0
    END_OF_GENERATION = 1
    STOP_STRING = 2
    MAX_TOKENS = 3
    CALLBACK = 4
    CANCELLED = 5
    CONTEXT_FULL = 6


class Attention(enum.IntEnum):
    TOKENSELECT = 0
    FULL = 1


class Positions(enum.IntEnum):
    REMAP = 0
    TRUE = 1


class ScoringKeys(enum.IntEnum):
    CACHED = 0  # the cache's own keys
    FP8 = 1     # GPU: an fp8 copy, half the bytes per candidate


class LogLevel(enum.IntEnum):
    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


# ----------------------------------------------------------------------------------------------
# Errors

class TokenSelectError(Exception):
    """A failing libtokenselect call: `.status` (Status) and `.message` (ts_last_error())."""

    def __init__(self, status: int, message: str):
        self.status = Status(status) if status in Status._value2member_map_ else status
        self.message = message
        super().__init__(f"{_status_name(status)}: {message}" if message else _status_name(status))


class InvalidArgumentError(TokenSelectError, ValueError):
    pass


class FileIOError(TokenSelectError, OSError):
    pass


class FormatError(TokenSelectError):
    pass


class UnsupportedError(TokenSelectError):
    pass


class OutOfMemoryError(TokenSelectError, MemoryError):
    pass


class ContextFullError(TokenSelectError):
    pass


class TruncatedError(TokenSelectError):
    pass


class InternalError(TokenSelectError):
    pass


class Cancelled(TokenSelectError):
    """TS_CANCELLED: the call was cancelled (Session.cancel() or a callback returning False).
    A prefill was rolled back; a generation kept its partial answer, which is in `.text`."""

    def __init__(self, status: int = Status.CANCELLED, message: str = "", text: str = ""):
        super().__init__(status, message)
        self.text = text


_ERRORS = {
    Status.ERR_INVALID_ARG: InvalidArgumentError, Status.ERR_IO: FileIOError, Status.ERR_FORMAT: FormatError,
    Status.ERR_UNSUPPORTED: UnsupportedError, Status.ERR_OUT_OF_MEMORY: OutOfMemoryError,
    Status.ERR_CONTEXT_FULL: ContextFullError, Status.CANCELLED: Cancelled, Status.TRUNCATED: TruncatedError,
    Status.ERR_INTERNAL: InternalError,
}


def _status_name(status: int) -> str:
    try:
        return _lib().ts_status_string(status).decode("utf-8", "replace")
    except Exception:  # e.g. while the library cannot be loaded
        return f"status {status}"


def _error(status: int) -> TokenSelectError:
    # ts_last_error() is per thread and valid until the next call, so read it first.
    message = _lib().ts_last_error().decode("utf-8", "replace")
    return _ERRORS.get(status, TokenSelectError)(status, message)


def _check(status: int) -> None:
    if status != Status.OK:
        raise _error(status)


# ----------------------------------------------------------------------------------------------
# C declarations

_PROGRESS_FN = ctypes.CFUNCTYPE(c_int32, c_int64, c_int64, c_void_p)
_TOKEN_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, c_size_t, c_int32, c_void_p)  # utf8 as void*: it has a length
_LOG_FN = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)
_NO_PROGRESS = _PROGRESS_FN()  # a NULL function pointer (ctypes refuses None for a CFUNCTYPE argument)


class _ModelOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("progress", _PROGRESS_FN), ("progress_user_data", c_void_p),
                ("log", _LOG_FN), ("log_user_data", c_void_p), ("log_level", c_int)]


class _ModelInfo(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("n_vocab", c_int32), ("n_embd", c_int32), ("n_layer", c_int32),
                ("n_head", c_int32), ("n_head_kv", c_int32), ("head_dim", c_int32), ("n_ff", c_int32),
                ("n_ctx_train", c_int32), ("bos_token", c_int32), ("eos_token", c_int32),
                ("n_params", c_uint64), ("file_size", c_uint64), ("kv_bytes_per_token", c_uint64),
                ("arch", c_char_p), ("name", c_char_p), ("chat_format", c_char_p)]


class _SelectSettings(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("attention", c_int), ("positions", c_int), ("n_init", c_int32),
                ("n_local", c_int32), ("k", c_int32), ("select_cache", c_int32), ("cache_threshold", c_float),
                ("scoring_keys", c_int32)]


class _SessionOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("n_ctx", c_int64), ("n_threads", c_int32), ("chunk", c_int32),
                ("select", POINTER(_SelectSettings)), ("system_prompt", c_char_p), ("chat_format", c_char_p),
                ("key_precision", c_int32), ("device", c_int64)]


class _GenerateOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("max_tokens", c_int32), ("temperature", c_float), ("top_k", c_int32),
                ("top_p", c_float), ("min_p", c_float), ("repeat_penalty", c_float), ("repeat_last_n", c_int32),
                ("seed", c_uint64), ("stop", POINTER(c_char_p)), ("n_stop", c_size_t),
                ("progress", _PROGRESS_FN), ("progress_user_data", c_void_p)]


class _SessionStats(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("n_tokens", c_int64), ("n_ctx", c_int64),
                ("kv_bytes_per_token", c_uint64), ("kv_bytes_used", c_uint64), ("prefill_tokens", c_int64),
                ("prefill_seconds", c_double), ("decode_tokens", c_int64), ("decode_seconds", c_double),
                ("first_token_seconds", c_double), ("select_cache_hits", c_int64),
                ("select_cache_misses", c_int64), ("selecting_steps", c_int64), ("dense_steps", c_int64),
                ("device", c_int32)]


_S, _M, _P = c_int, c_void_p, c_void_p  # status, ts_model*, ts_session*
_SZ = POINTER(c_size_t)
_SIGNATURES = {
    "ts_status_string": (c_char_p, [c_int]),
    "ts_last_error": (c_char_p, []),
    "ts_version_number": (c_int32, []),
    "ts_version_string": (c_char_p, []),
    "ts_model_options_init": (None, [POINTER(_ModelOptions)]),
    "ts_model_load": (_S, [c_char_p, POINTER(_ModelOptions), POINTER(c_void_p)]),
    "ts_model_free": (None, [_M]),
    "ts_model_get_info": (_S, [_M, POINTER(_ModelInfo)]),
    "ts_model_get_metadata": (_S, [_M, c_char_p, POINTER(c_char), c_size_t, _SZ]),
    "ts_tokenize": (_S, [_M, c_char_p, c_size_t, c_uint32, POINTER(c_int32), c_size_t, _SZ]),
    "ts_detokenize": (_S, [_M, POINTER(c_int32), c_size_t, c_uint32, POINTER(c_char), c_size_t, _SZ]),
    "ts_select_settings_init": (None, [POINTER(_SelectSettings)]),
    "ts_session_options_init": (None, [POINTER(_SessionOptions)]),
    "ts_session_create": (_S, [_M, POINTER(_SessionOptions), POINTER(c_void_p)]),
    "ts_session_free": (None, [_P]),
    "ts_session_cancel": (None, [_P]),
    "ts_session_reset": (_S, [_P]),
    "ts_session_add_document": (_S, [_P, c_char_p, c_char_p, c_size_t, POINTER(c_int32)]),
    "ts_session_add_message": (_S, [_P, c_int, c_char_p, c_size_t]),
    "ts_session_message_count": (_S, [_P, POINTER(c_int32)]),
    "ts_session_get_message": (_S, [_P, c_int32, POINTER(c_int), POINTER(c_char), c_size_t, _SZ]),
    "ts_session_truncate_messages": (_S, [_P, c_int32]),
    "ts_session_prefill": (_S, [_P, _PROGRESS_FN, c_void_p]),
    "ts_generate_options_init": (None, [POINTER(_GenerateOptions)]),
    "ts_session_generate": (_S, [_P, POINTER(_GenerateOptions), _TOKEN_FN, c_void_p, POINTER(c_int)]),
    "ts_session_next_token": (_S, [_P, POINTER(_GenerateOptions), POINTER(c_void_p), _SZ, POINTER(c_int32),
                                   POINTER(c_int)]),
    "ts_session_end_answer": (_S, [_P]),
    "ts_session_prefill_tokens": (_S, [_P, POINTER(c_int32), c_size_t, _PROGRESS_FN, c_void_p]),
    "ts_session_get_tokens": (_S, [_P, POINTER(c_int32), c_size_t, _SZ]),
    "ts_session_truncate_tokens": (_S, [_P, c_int64]),
    "ts_session_get_logits": (_S, [_P, POINTER(POINTER(c_float)), _SZ]),
    "ts_session_get_select": (_S, [_P, POINTER(_SelectSettings)]),
    "ts_session_set_select": (_S, [_P, POINTER(_SelectSettings)]),
    "ts_session_get_stats": (_S, [_P, POINTER(_SessionStats)]),
    "ts_session_reset_stats": (_S, [_P]),
    "ts_session_set_recording": (_S, [_P, c_int32]),
    "ts_session_get_selection": (_S, [_P, c_int32, POINTER(c_int32), POINTER(c_float), c_size_t, _SZ]),
    "ts_session_get_selection_counts": (_S, [_P, POINTER(c_uint32), c_size_t, _SZ]),
    "ts_session_get_binned_scores": (_S, [_P, c_int32, POINTER(c_float), c_size_t, _SZ]),
    "ts_session_get_binned_counts": (_S, [_P, c_int32, POINTER(c_uint64), c_size_t, _SZ]),
    "ts_session_get_document_tokens": (_S, [_P, c_int32, POINTER(c_int64), POINTER(c_uint64), c_size_t, _SZ]),
    "ts_session_save": (_S, [_P, c_char_p]),
    "ts_session_load": (_S, [_P, c_char_p]),
}


def _candidates() -> List[str]:
    env = os.environ.get("TOKENSELECT_LIBRARY")
    if env:
        return [env]  # explicit: nothing else is tried, so a wrong path is an error, not a surprise
    found = ctypes.util.find_library("tokenselect")
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))  # capi/python -> repository root
    paths = [found] if found else []
    paths += sorted(glob.glob(os.path.join(here, "libtokenselect.so*")))
    paths += sorted(glob.glob(os.path.join(root, "build*", "capi", "libtokenselect.so")), key=os.path.getmtime,
                    reverse=True)  # the most recently built tree first
    return paths


_lib_handle = None
_lib_lock = threading.Lock()


def _lib() -> ctypes.CDLL:
    """The loaded library with every signature declared (loaded on first use, so that importing
    this module never fails)."""
    global _lib_handle
    if _lib_handle is not None:
        return _lib_handle
    with _lib_lock:
        if _lib_handle is None:
            errors = []
            for path in _candidates():
                try:
                    lib = ctypes.CDLL(path)  # CDLL releases the GIL during calls: cancel() can run meanwhile
                    break
                except OSError as e:
                    errors.append(f"{path}: {e}")
            else:
                raise OSError("libtokenselect not found; set TOKENSELECT_LIBRARY to its path"
                              + (" (" + "; ".join(errors) + ")" if errors else ""))
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
            major = lib.ts_version_number() // 1000000
            if major != VERSION_MAJOR:
                raise OSError(f"{path} is libtokenselect {lib.ts_version_string().decode()}, "
                              f"this binding needs major version {VERSION_MAJOR}")
            lib._path = path
            _lib_handle = lib
    return _lib_handle


def library_path() -> str:
    return _lib()._path


def version() -> str:
    """The loaded library's "MAJOR.MINOR.PATCH"."""
    return _lib().ts_version_string().decode()


def version_number() -> int:
    return _lib().ts_version_number()


# ----------------------------------------------------------------------------------------------
# Helpers: buffers, callbacks

def _encode(text: Union[str, bytes]) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def _path(path) -> bytes:
    return os.fsencode(path)


def _to_array(typecode: str, buf, n: int) -> array.array:
    """The first n items of a ctypes array as an array.array (a copy that owns its memory)."""
    out = array.array(typecode)
    if n:
        out.frombytes(ctypes.string_at(buf, n * out.itemsize))
    return out


def _two_call(call, typecode: str, ctype) -> array.array:
    """The two-call pattern for an array: call(ptr, capacity, needed_ptr) -> status."""
    needed = c_size_t(0)
    status = call(None, 0, byref(needed))
    while True:
        _check_two_call(status)
        n = needed.value
        if n == 0:
            return array.array(typecode)
        buf = (ctype * n)()
        status = call(buf, n, byref(needed))
        if status == Status.OK and needed.value <= n:
            return _to_array(typecode, buf, needed.value)
        # TRUNCATED: the data grew between the calls; try again with the new size.


def _check_two_call(status: int) -> None:
    if status not in (Status.OK, Status.TRUNCATED):
        raise _error(status)


def _two_call_text(call) -> str:
    """The two-call pattern for text: call(buf, capacity, needed_ptr) -> status."""
    needed = c_size_t(0)
    status = call(None, 0, byref(needed))
    while True:
        _check_two_call(status)
        buf = ctypes.create_string_buffer(needed.value + 1)  # + the NUL
        status = call(buf, len(buf), byref(needed))
        if status == Status.OK and needed.value < len(buf):
            return buf.raw[:needed.value].decode("utf-8", "replace")
        _check_two_call(status)


class _Callback:
    """Wraps a Python callable as a C callback that never lets an exception cross into C: the
    first exception is kept, the C side is told to stop, and raise_pending() re-raises it after
    the C call has returned. The CFUNCTYPE object lives as long as this wrapper."""

    def __init__(self, cfunctype, body):
        self.exception: Optional[BaseException] = None

        def trampoline(*args):
            if self.exception is not None:
                return _STOP
            try:
                return _STOP if body(*args) is False else _CONTINUE
            except BaseException as e:  # KeyboardInterrupt too: Ctrl-C in a long prefill stops it
                self.exception = e
                return _STOP

        self.c = cfunctype(trampoline)

    def raise_pending(self) -> None:
        if self.exception is not None:
            e, self.exception = self.exception, None
            raise e


def _progress(fn: Optional[Callable[[int, int], object]]):
    if fn is None:
        return None
    return _Callback(_PROGRESS_FN, lambda done, total, _user: fn(done, total))


def _checked_call(status: int, *callbacks) -> None:
    """Raises a callback's exception first (it is why the call stopped), else the status."""
    for cb in callbacks:
        if cb is not None:
            cb.raise_pending()
    _check(status)


# ----------------------------------------------------------------------------------------------
# Plain data

@dataclasses.dataclass(frozen=True)
class ModelInfo:
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_ctx_train: int
    bos_token: int  # -1 when none
    eos_token: int  # -1 when none
    n_params: int
    file_size: int
    kv_bytes_per_token: int
    arch: str
    name: str
    chat_format: str  # "" when unrecognised


@dataclasses.dataclass
class SelectSettings:
    """TokenSelect settings (defaults as ts_select_settings_init())."""
    attention: Attention = Attention.TOKENSELECT
    positions: Positions = Positions.REMAP
    n_init: int = 128       # attention sinks, always attended
    n_local: int = 512      # most recent tokens, always attended
    k: int = 2048           # tokens selected per layer per step
    select_cache: bool = True
    cache_threshold: float = 0.9
    scoring_keys: ScoringKeys = ScoringKeys.CACHED  # FP8: the GPU scores an fp8 copy of the keys

    @classmethod
    def library_defaults(cls) -> "SelectSettings":
        c = _SelectSettings()
        _lib().ts_select_settings_init(byref(c))
        return cls._from_c(c)

    @classmethod
    def _from_c(cls, c: _SelectSettings) -> "SelectSettings":
        return cls(Attention(c.attention), Positions(c.positions), c.n_init, c.n_local, c.k, bool(c.select_cache),
                   round(c.cache_threshold, 6),  # a C float: 0.9 reads back as 0.8999999761...
                   ScoringKeys(c.scoring_keys))

    def _to_c(self) -> _SelectSettings:
        c = _SelectSettings()
        _lib().ts_select_settings_init(byref(c))
        c.attention, c.positions = int(self.attention), int(self.positions)
        c.n_init, c.n_local, c.k = self.n_init, self.n_local, self.k
        c.select_cache, c.cache_threshold = int(bool(self.select_cache)), self.cache_threshold
        c.scoring_keys = int(self.scoring_keys)
        return c


@dataclasses.dataclass(frozen=True)
class SessionStats:
    n_tokens: int
    n_ctx: int
    kv_bytes_per_token: int
    kv_bytes_used: int
    prefill_tokens: int
    prefill_seconds: float
    decode_tokens: int
    decode_seconds: float
    first_token_seconds: float
    select_cache_hits: int
    select_cache_misses: int
    selecting_steps: int
    dense_steps: int
    device: int  # 1: CPU, 2: CUDA


@dataclasses.dataclass
class Answer:
    """What generate() returns; str(answer) is its text."""
    text: str
    stop_reason: StopReason
    tokens: List[int]

    def __str__(self) -> str:
        return self.text


def _struct_to_dataclass(cls, c):
    return cls(**{f.name: getattr(c, f.name) for f in dataclasses.fields(cls)})


# ----------------------------------------------------------------------------------------------
# Handles

class _Handle:
    """What Model and Session share: a library handle in self._handle, closed by close() (the
    subclass's), on leaving a `with` block and when collected."""

    _kind = "handle"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _h(self):
        if not self._handle:
            raise InvalidArgumentError(Status.ERR_INVALID_ARG, f"the {self._kind} is closed")
        return self._handle


# ----------------------------------------------------------------------------------------------
# Model

class Model(_Handle):
    """Weights and tokenizer of one GGUF file (ts_model). Thread-safe; a context manager."""

    _kind = "model"

    def __init__(self, path, progress: Optional[Callable[[int, int], object]] = None,
                 log: Optional[Callable[[LogLevel, str], None]] = None, log_level: LogLevel = LogLevel.INFO):
        """Loads `path`. progress(done_bytes, total_bytes) may return False to cancel (Cancelled);
        log(level, message) receives the model's log lines, from any thread."""
        lib = _lib()
        self._handle = None
        self._sessions = weakref.WeakSet()
        self._log = None
        opts = _ModelOptions()
        lib.ts_model_options_init(byref(opts))
        prog = _progress(progress)
        if prog:
            opts.progress = prog.c
        if log is not None:
            def log_body(level, message, _user):
                try:
                    log(LogLevel(level), message.decode("utf-8", "replace"))
                except BaseException:  # nowhere to report it; it must not reach C
                    pass
            self._log = _LOG_FN(log_body)  # kept for the model's lifetime: the library calls it until free
            opts.log, opts.log_level = self._log, int(log_level)
        handle = c_void_p()
        status = lib.ts_model_load(_path(path), byref(opts), byref(handle))
        if status != Status.OK and handle.value:  # a failed load sets NULL, but never leak
            lib.ts_model_free(handle)
        _checked_call(status, prog)
        self._handle = handle.value
        self.path = os.fspath(path)
        self._info = None

    @classmethod
    def load(cls, path, progress=None, log=None, log_level=LogLevel.INFO) -> "Model":
        return cls(path, progress=progress, log=log, log_level=log_level)

    # Lifetime ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the model, closing its sessions first (the library needs them gone)."""
        for session in list(self._sessions):
            session.close()
        if self._handle:
            handle, self._handle = self._handle, None
            _lib_handle.ts_model_free(handle)  # loaded, since there was a handle


    # Information -------------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            c = _ModelInfo()
            c.struct_size = ctypes.sizeof(c)
            _check(_lib().ts_model_get_info(self._h(), byref(c)))
            values = {f.name: getattr(c, f.name) for f in dataclasses.fields(ModelInfo)}
            for key in ("arch", "name", "chat_format"):
                values[key] = (values[key] or b"").decode("utf-8", "replace")
            self._info = ModelInfo(**values)
        return self._info

    _MISSING = object()

    def metadata(self, key: str, default=_MISSING) -> str:
        """A GGUF metadata value as text; InvalidArgumentError when absent (or `default`)."""
        lib, h, k = _lib(), self._h(), _encode(key)
        try:
            return _two_call_text(lambda buf, cap, needed: lib.ts_model_get_metadata(h, k, buf, cap, needed))
        except InvalidArgumentError:
            if default is Model._MISSING:
                raise
            return default

    # Tokens ------------------------------------------------------------------------------------
    def tokenize(self, text: Union[str, bytes], add_bos: bool = False, special: bool = False) -> List[int]:
        """Token ids of `text` (bytes may be invalid UTF-8). add_bos: prepend BOS when the model
        asks for it; special: "<|im_start|>" etc. become their special tokens."""
        lib, h, data = _lib(), self._h(), _encode(text)
        flags = (TOKENIZE_ADD_BOS if add_bos else 0) | (TOKENIZE_PARSE_SPECIAL if special else 0)
        return _two_call(lambda buf, cap, needed: lib.ts_tokenize(h, data, len(data), flags, buf, cap, needed),
                         "i", c_int32).tolist()

    def detokenize(self, tokens: Sequence[int], render_special: bool = False) -> str:
        lib, h = _lib(), self._h()
        ids = (c_int32 * len(tokens))(*tokens)
        flags = DETOKENIZE_RENDER_SPECIAL if render_special else 0
        return _two_call_text(lambda buf, cap, needed: lib.ts_detokenize(h, ids, len(tokens), flags, buf, cap,
                                                                          needed))

    # Sessions ----------------------------------------------------------------------------------
    def session(self, **options) -> "Session":
        """A new Session on this model; see Session.__init__ for the options."""
        return Session(self, **options)


# ----------------------------------------------------------------------------------------------
# Session

class Session(_Handle):
    """One conversation and its KV cache (ts_session). One thread at a time, except cancel().
    A context manager."""

    _kind = "session"

    def __init__(self, model: Model, n_ctx: int = 0, n_threads: int = 0, chunk: Optional[int] = None,
                 select: Optional[SelectSettings] = None, system_prompt: Optional[str] = None,
                 chat_format: Optional[str] = None, f32_keys: bool = False, device: str = "auto"):
        """n_ctx 0: the trained context (full attention) or 65536 (TokenSelect); n_threads 0: all
        hardware threads; chunk: prefill chunk in tokens (default 512, at most n_local);
        system_prompt None: the model's default; chat_format "chatml"/"llama3"/"llama2" or None;
        f32_keys: cache keys in f32 (1.5x the cache; full-attention logits then equal llama.cpp's);
        device "auto" (the GPU when the library has CUDA and one can run the model), "cpu" or "cuda"."""
        lib = _lib()
        self._handle = None
        self._lock = threading.Lock()  # makes cancel() safe against a concurrent close()
        self.model = model  # keeps the model alive while the session exists
        self.stop_reason = StopReason.NONE  # of the last answer
        opts = _SessionOptions()
        lib.ts_session_options_init(byref(opts))
        opts.n_ctx, opts.n_threads = n_ctx, n_threads
        if chunk is not None:
            opts.chunk = chunk
        if select is not None:
            c_select = select._to_c()
            opts.select = ctypes.pointer(c_select)
        if system_prompt is not None:
            opts.system_prompt = _encode(system_prompt)
        if chat_format is not None:
            opts.chat_format = _encode(chat_format)
        opts.key_precision = 1 if f32_keys else 0  # TS_KEYS_F32 / TS_KEYS_F16
        devices = {"auto": 0, "cpu": 1, "cuda": 2}  # TS_DEVICE_*
        if device not in devices:
            raise ValueError(f"device must be one of {sorted(devices)} (got {device!r})")
        opts.device = devices[device]
        handle = c_void_p()
        status = lib.ts_session_create(model._h(), byref(opts), byref(handle))
        if status != Status.OK and handle.value:
            lib.ts_session_free(handle)
        _check(status)
        self._handle = handle.value
        model._sessions.add(self)

    # Lifetime ----------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle:
            _lib_handle.ts_session_free(handle)


    def cancel(self) -> None:
        """From any thread: the running prefill/generation raises Cancelled within one chunk or
        step (a prefill is rolled back). A cancel while nothing runs is dropped."""
        with self._lock:
            if self._handle:
                _lib().ts_session_cancel(self._handle)

    def reset(self) -> None:
        """Forgets the conversation and the KV cache (settings stay)."""
        _check(_lib().ts_session_reset(self._h()))

    # Conversation ------------------------------------------------------------------------------
    def add_document(self, text: Union[str, bytes], title: Optional[str] = None) -> int:
        """Adds a document to the start of the next user message; returns its id (0, 1, ...)."""
        data = _encode(text)
        doc_id = c_int32(-1)
        _check(_lib().ts_session_add_document(self._h(), _encode(title) if title is not None else None, data,
                                              len(data), byref(doc_id)))
        return doc_id.value

    def add_message(self, role: Role, text: Union[str, bytes]) -> None:
        data = _encode(text)
        _check(_lib().ts_session_add_message(self._h(), int(role), data, len(data)))

    def message_count(self) -> int:
        n = c_int32()
        _check(_lib().ts_session_message_count(self._h(), byref(n)))
        return n.value

    def get_message(self, index: int) -> Tuple[Role, str]:
        lib, h, role = _lib(), self._h(), c_int()
        text = _two_call_text(lambda buf, cap, needed: lib.ts_session_get_message(h, index, byref(role), buf, cap,
                                                                                  needed))
        return Role(role.value), text

    @property
    def messages(self) -> List[Tuple[Role, str]]:
        return [self.get_message(i) for i in range(self.message_count())]

    def truncate_messages(self, count: int) -> None:
        _check(_lib().ts_session_truncate_messages(self._h(), count))

    def prefill(self, progress: Optional[Callable[[int, int], object]] = None) -> None:
        """Runs the conversation's prompt into the KV cache. progress(done, total) in tokens."""
        prog = _progress(progress)
        status = _lib().ts_session_prefill(self._h(), prog.c if prog else _NO_PROGRESS, None)
        _checked_call(status, prog)

    # Generation --------------------------------------------------------------------------------
    @staticmethod
    def _generate_options(max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed,
                          stop, progress):
        """The C options (None fields keep the library's defaults) and the objects they borrow."""
        opts = _GenerateOptions()
        _lib().ts_generate_options_init(byref(opts))
        for name, value in (("max_tokens", max_tokens), ("temperature", temperature), ("top_k", top_k),
                            ("top_p", top_p), ("min_p", min_p), ("repeat_penalty", repeat_penalty),
                            ("repeat_last_n", repeat_last_n), ("seed", seed)):
            if value is not None:
                setattr(opts, name, value)
        keep = []
        if stop:
            stops = (c_char_p * len(stop))(*[_encode(s) for s in stop])
            opts.stop, opts.n_stop = ctypes.cast(stops, POINTER(c_char_p)), len(stop)
            keep.append(stops)
        prog = _progress(progress)
        if prog:
            opts.progress = prog.c
        return opts, prog, keep

    def generate(self, on_token: Optional[Callable[[str, int], object]] = None, *, max_tokens: Optional[int] = None,
                 temperature: Optional[float] = None, top_k: Optional[int] = None, top_p: Optional[float] = None,
                 min_p: Optional[float] = None, repeat_penalty: Optional[float] = None,
                 repeat_last_n: Optional[int] = None, seed: Optional[int] = None,
                 stop: Optional[Sequence[str]] = None,
                 progress: Optional[Callable[[int, int], object]] = None) -> Answer:
        """Answers the conversation (its last message must be a user message), prefilling first
        when needed; the answer is appended to the conversation. on_token(piece, token) gets each
        piece of text (token -1 for a final flush) and may return False to stop early. Options
        left None keep the library's defaults (temperature 0 is greedy). Raises Cancelled (with
        the partial `.text`) after cancel()."""
        opts, prog, _borrowed = self._generate_options(max_tokens, temperature, top_k, top_p, min_p,
                                                       repeat_penalty, repeat_last_n, seed, stop, progress)
        pieces: List[str] = []
        tokens: List[int] = []

        def body(utf8, length, token, _user):
            piece = ctypes.string_at(utf8, length).decode("utf-8", "replace") if length else ""
            pieces.append(piece)
            if token >= 0:
                tokens.append(token)
            if on_token is not None:
                return on_token(piece, token)

        cb = _Callback(_TOKEN_FN, body)
        reason = c_int(StopReason.NONE)
        status = _lib().ts_session_generate(self._h(), byref(opts), cb.c, None, byref(reason))
        self.stop_reason = StopReason(reason.value)
        _checked_call(Status.OK, cb, prog)  # a callback's exception first
        text = "".join(pieces)
        if status == Status.CANCELLED:
            e = _error(status)
            e.text = text
            raise e
        _check(status)
        return Answer(text, self.stop_reason, tokens)

    def next_token(self, *, max_tokens=None, temperature=None, top_k=None, top_p=None, min_p=None,
                   repeat_penalty=None, repeat_last_n=None, seed=None, stop=None,
                   progress=None) -> Tuple[str, int, StopReason]:
        """One step of pull-style generation (ts_session_next_token): (piece, token, reason);
        the options are read only when an answer starts. See stream() for the usual loop."""
        opts, prog, _borrowed = self._generate_options(max_tokens, temperature, top_k, top_p, min_p,
                                                       repeat_penalty, repeat_last_n, seed, stop, progress)
        piece, length, token, reason = c_void_p(), c_size_t(0), c_int32(-1), c_int(StopReason.NONE)
        status = _lib().ts_session_next_token(self._h(), byref(opts), byref(piece), byref(length), byref(token),
                                              byref(reason))
        self.stop_reason = StopReason(reason.value)
        _checked_call(status, prog)
        # The piece is borrowed until the next call on this session: copy it now.
        text = ctypes.string_at(piece.value, length.value).decode("utf-8", "replace") if length.value else ""
        return text, token.value, self.stop_reason

    def stream(self, *, with_tokens: bool = False, **options) -> Iterator[Union[str, Tuple[str, int]]]:
        """Generates the answer as an iterator of text pieces (or (piece, token) pairs with
        with_tokens=True; then empty pieces are yielded too). Options as for generate(). The stop
        reason is in self.stop_reason afterwards. Leaving the loop early ends the answer (as
        StopReason.CALLBACK), keeping the text so far in the conversation."""
        started = done = False
        try:
            while True:
                piece, token, reason = self.next_token(**options)
                started, done = True, reason != StopReason.NONE
                if with_tokens:
                    yield piece, token
                elif piece:
                    yield piece
                if done:
                    return
        except Cancelled:
            done = True  # the library has ended the answer
            raise
        finally:
            if started and not done and self._handle:  # the caller left the loop (break, exception)
                _lib().ts_session_end_answer(self._handle)
                self.stop_reason = StopReason.CALLBACK

    def end_answer(self) -> None:
        """Ends a pull-style answer early (StopReason.CALLBACK); no-op when none is in progress."""
        _check(_lib().ts_session_end_answer(self._h()))

    # Tokens and logits -------------------------------------------------------------------------
    def prefill_tokens(self, tokens: Sequence[int], progress: Optional[Callable[[int, int], object]] = None) -> None:
        """Appends raw tokens to the KV cache, outside the conversation (no template)."""
        ids = (c_int32 * len(tokens))(*tokens)
        prog = _progress(progress)
        status = _lib().ts_session_prefill_tokens(self._h(), ids, len(tokens), prog.c if prog else _NO_PROGRESS, None)
        _checked_call(status, prog)

    @property
    def tokens(self) -> List[int]:
        """The tokens in the KV cache."""
        lib, h = _lib(), self._h()
        return _two_call(lambda buf, cap, needed: lib.ts_session_get_tokens(h, buf, cap, needed), "i",
                         c_int32).tolist()

    def truncate_tokens(self, n: int) -> None:
        _check(_lib().ts_session_truncate_tokens(self._h(), n))

    def logits(self) -> array.array:
        """A copy of the logits after the last token run (n_vocab floats, array('f'))."""
        ptr, n = POINTER(c_float)(), c_size_t(0)
        _check(_lib().ts_session_get_logits(self._h(), byref(ptr), byref(n)))
        return _to_array("f", ptr, n.value)  # borrowed until the session changes: copy now

    # Settings and statistics -------------------------------------------------------------------
    @property
    def select(self) -> SelectSettings:
        c = _SelectSettings()
        _lib().ts_select_settings_init(byref(c))
        _check(_lib().ts_session_get_select(self._h(), byref(c)))
        return SelectSettings._from_c(c)

    @select.setter
    def select(self, settings: SelectSettings) -> None:
        """Validated by the library (InvalidArgumentError naming the field); in effect from the next step."""
        c = settings._to_c()
        _check(_lib().ts_session_set_select(self._h(), byref(c)))

    def update_select(self, **changes) -> SelectSettings:
        """Changes some settings, e.g. update_select(k=256); returns the new settings."""
        self.select = dataclasses.replace(self.select, **changes)
        return self.select

    @property
    def stats(self) -> SessionStats:
        c = _SessionStats()
        c.struct_size = ctypes.sizeof(c)
        _check(_lib().ts_session_get_stats(self._h(), byref(c)))
        return _struct_to_dataclass(SessionStats, c)

    def reset_stats(self) -> None:
        _check(_lib().ts_session_reset_stats(self._h()))

    # Heatmap -----------------------------------------------------------------------------------
    def set_recording(self, enabled: bool = True) -> None:
        """Selection recording (off by default; the heatmap getters return empty data while off)."""
        _check(_lib().ts_session_set_recording(self._h(), int(bool(enabled))))

    def selection(self, layer: int) -> Tuple[array.array, array.array]:
        """Layer `layer`'s selection in the last step: (ascending cache positions array('i'),
        vote scores array('f')); empty when the layer attended everything."""
        lib, h = _lib(), self._h()
        needed = c_size_t(0)
        status = lib.ts_session_get_selection(h, layer, None, None, 0, byref(needed))
        while True:
            _check_two_call(status)
            n = needed.value
            positions, scores = (c_int32 * n)(), (c_float * n)()
            if n == 0:
                return array.array("i"), array.array("f")
            status = lib.ts_session_get_selection(h, layer, positions, scores, n, byref(needed))
            if status == Status.OK and needed.value <= n:
                return _to_array("i", positions, needed.value), _to_array("f", scores, needed.value)

    def selection_counts(self) -> array.array:
        """Per cached token, how often it was selected during the current answer (array('I'))."""
        lib, h = _lib(), self._h()
        return _two_call(lambda buf, cap, needed: lib.ts_session_get_selection_counts(h, buf, cap, needed), "I",
                         c_uint32)

    def binned_scores(self, n_bins: int) -> List[array.array]:
        """Per layer (rows), the last step's vote scores summed over n_bins equal bins of the cache."""
        lib, h = _lib(), self._h()
        flat = _two_call(lambda buf, cap, needed: lib.ts_session_get_binned_scores(h, n_bins, buf, cap, needed),
                         "f", c_float)
        if n_bins <= 0 or not flat:
            return []
        return [flat[i:i + n_bins] for i in range(0, len(flat), n_bins)]

    def binned_counts(self, n_bins: int) -> array.array:
        """The per-token selection counts summed over n_bins equal bins (array('Q'))."""
        lib, h = _lib(), self._h()
        return _two_call(lambda buf, cap, needed: lib.ts_session_get_binned_counts(h, n_bins, buf, cap, needed),
                         "Q", c_uint64)

    def document_tokens(self, document_id: int) -> Tuple[int, array.array]:
        """(cache position of the document's first token, byte offset in its text where each of
        its tokens starts, array('Q')). Valid once the document has been prefilled."""
        lib, h, first = _lib(), self._h(), c_int64(-1)
        offsets = _two_call(lambda buf, cap, needed: lib.ts_session_get_document_tokens(
            h, document_id, byref(first), buf, cap, needed), "Q", c_uint64)
        return first.value, offsets

    # State -------------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Saves the conversation, KV cache, settings and sampling state to `path`."""
        _check(_lib().ts_session_save(self._h(), _path(path)))

    def load(self, path) -> None:
        """Replaces this session's state with a saved one (same model; unchanged on failure)."""
        _check(_lib().ts_session_load(self._h(), _path(path)))

