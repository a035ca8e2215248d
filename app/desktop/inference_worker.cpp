#include "inference_worker.h"

#include <tokenselect.h>

#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QLoggingCategory>
#include <QMutexLocker>

#include "session_probe.h"

Q_LOGGING_CATEGORY(lcEngine, "tokenselect.engine")

namespace {

// Heatmap frames and progress at most this often: a 100k-token cache must not flood the UI.
constexpr qint64 kFrameIntervalMs = 80;

QString lastError() { return QString::fromUtf8(ts_last_error()); }

void logLine(int32_t level, const char* message, void*) {
  if (level <= TS_LOG_WARN)
    qCWarning(lcEngine, "%s", message);
  else
    qCDebug(lcEngine, "%s", message);
}

// The app's TokenSelect settings as the library takes them.
ts_select_settings selectSettings(const SelectConfig& c) {
  ts_select_settings s;
  ts_select_settings_init(&s);
  s.attention = c.dense ? TS_ATTENTION_FULL : TS_ATTENTION_TOKENSELECT;
  s.k = c.k;
  s.n_init = c.nInit;
  s.n_local = c.nLocal;
  s.select_cache = c.cache ? 1 : 0;
  s.cache_threshold = float(c.cacheThreshold);
  s.scoring_keys = c.fp8Keys ? TS_SCORING_KEYS_FP8 : TS_SCORING_KEYS_CACHED;
  return s;
}

}  // namespace

// Context of one long C call (model load, prefill, generate): its callbacks run on this thread
// inside the call, read the session through const getters only, and hand copies to the UI.
struct InferenceWorker::Call {
  InferenceWorker* w;
  QElapsedTimer clock;
  qint64 lastEmitMs = -kFrameIntervalMs;
  int tokens = 0;
  QString text;

  explicit Call(InferenceWorker* worker) : w(worker) { clock.start(); }

  bool due() {
    const qint64 now = clock.elapsed();
    if (now - lastEmitMs < kFrameIntervalMs) return false;
    lastEmitMs = now;
    return true;
  }
  int32_t verdict() const { return w->m_cancel || w->m_shutdown ? TS_STOP : TS_CONTINUE; }

  static int32_t onModelProgress(int64_t done, int64_t total, void* user) {
    auto* c = static_cast<Call*>(user);
    if (done == total || c->due()) emit c->w->modelProgress(done, total);
    return c->verdict();
  }

  static int32_t onPrefillProgress(int64_t done, int64_t total, void* user) {
    auto* c = static_cast<Call*>(user);
    if (done == total || c->due()) {
      PrefillProgress p;
      p.done = done;
      p.total = total;
      const double seconds = c->clock.elapsed() / 1000.0;
      if (done > 0 && seconds > 0) {
        p.tokensPerSecond = done / seconds;
        p.etaSeconds = (total - done) / p.tokensPerSecond;
      }
      emit c->w->prefillProgress(p);
      emit c->w->selectionUpdated(probe::frame(c->w->m_session, c->w->m_info.nLayer));
    }
    return c->verdict();
  }

  static int32_t onToken(const char* utf8, size_t len, int32_t token, void* user) {
    auto* c = static_cast<Call*>(user);
    const ts_session* s = c->w->m_session;
    if (c->tokens == 0) c->w->publish(true);  // the prompt is in the cache: documents have positions
    AnswerToken t;
    t.index = c->tokens++;
    t.piece = QString::fromUtf8(utf8, qsizetype(len));
    t.token = token;
    t.nTokens = probe::tokenCount(s);
    t.scores = probe::scores(s);
    t.nLayer = c->w->m_info.nLayer;
    t.nBins = probe::kBins;
    c->text += t.piece;
    emit c->w->tokenGenerated(t);
    if (c->due()) emit c->w->selectionUpdated(probe::frame(s, c->w->m_info.nLayer));
    return c->verdict();
  }
};

InferenceWorker::InferenceWorker(QObject* parent) : QObject(parent) {}

InferenceWorker::~InferenceWorker() {
  setSession(nullptr);
  ts_model_free(m_model);
}

void InferenceWorker::cancel() {
  m_cancel = true;
  QMutexLocker lock(&m_sessionMutex);
  if (m_session) ts_session_cancel(m_session);
}

void InferenceWorker::shutdown() {
  m_shutdown = true;
  cancel();
}

// A cancel pressed for an earlier job must not stop this one; none is allowed once closing.
bool InferenceWorker::startJob() {
  m_cancel = false;
  return !m_shutdown;
}

void InferenceWorker::setSession(ts_session* session) {
  ts_session* old = nullptr;
  {
    QMutexLocker lock(&m_sessionMutex);
    old = m_session;
    m_session = session;
  }
  ts_session_free(old);
}

void InferenceWorker::fail(const QString& title, const QString& what) {
  emit failed(title, what.isEmpty() ? lastError() : what + "\n\n" + lastError());
}

void InferenceWorker::loadModel(const QString& path, const SessionConfig& config) {
  if (!startJob()) return;
  emit jobStarted(Job::LoadModel, QFileInfo(path).fileName());
  Call call(this);
  ts_model_options options;
  ts_model_options_init(&options);
  options.progress = &Call::onModelProgress;
  options.progress_user_data = &call;
  options.log = &logLine;
  options.log_level = TS_LOG_WARN;
  ts_model* model = nullptr;
  const ts_status st = ts_model_load(QFile::encodeName(path).constData(), &options, &model);
  if (st != TS_OK) {
    if (st != TS_CANCELLED) fail(tr("Could not open the model"), tr("%1 is not a model this app can use.").arg(path));
    emit jobFinished(Job::LoadModel);
    return;
  }
  setSession(nullptr);  // sessions must go before their model
  ts_model_free(m_model);
  m_model = model;

  ts_model_info info{};
  info.struct_size = sizeof info;
  ts_model_get_info(m_model, &info);
  m_info = ModelInfo{};
  m_info.path = path;
  m_info.name = QString::fromUtf8(info.name);
  m_info.arch = QString::fromUtf8(info.arch);
  m_info.chatFormat = QString::fromUtf8(info.chat_format);
  m_info.nLayer = info.n_layer;
  m_info.nCtxTrain = info.n_ctx_train;
  m_info.nParams = info.n_params;
  m_info.fileSize = info.file_size;
  m_info.kvBytesPerToken = info.kv_bytes_per_token;
  m_config = config;
  const bool ready = createSession() && replay();
  if (ready) emit modelLoaded(m_info);
  emit jobFinished(Job::LoadModel);
  if (ready && !m_log.isEmpty()) readAhead(-1);
}

bool InferenceWorker::createSession() {
  setSession(nullptr);
  const ts_select_settings select = selectSettings(m_config.select);
  const QByteArray system = m_config.systemPrompt.toUtf8();
  ts_session_options options;
  ts_session_options_init(&options);
  options.n_ctx = m_config.nCtx;
  options.n_threads = m_config.threads;
  options.select = &select;
  options.system_prompt = system.constData();
  // Prefill chunks no longer than the local window (the library's rule) and short enough that
  // Cancel answers within a second or two on a laptop CPU.
  options.chunk = qMin(256, m_config.select.nLocal);
  ts_session* session = nullptr;
  if (ts_session_create(m_model, &options, &session) != TS_OK) {
    fail(tr("Could not start a chat session"), tr("Check the context size and TokenSelect settings."));
    return false;
  }
  ts_session_set_recording(session, 1);
  setSession(session);
  return true;
}

bool InferenceWorker::replay() {
  for (const Entry& e : m_log) {
    const ts_status st =
        e.kind == Entry::Document
            ? ts_session_add_document(m_session, e.title.constData(), e.text.constData(), size_t(e.text.size()), nullptr)
            : ts_session_add_message(m_session, e.kind == Entry::User ? TS_ROLE_USER : TS_ROLE_ASSISTANT,
                                     e.text.constData(), size_t(e.text.size()));
    if (st != TS_OK) {
      fail(tr("Could not restore the conversation"), {});
      return false;
    }
  }
  return true;
}

void InferenceWorker::setSessionConfig(const SessionConfig& config) {
  if (!startJob()) return;
  m_config = config;
  if (!m_model) return;
  if (createSession() && replay() && !m_log.isEmpty()) readAhead(-1);
}

void InferenceWorker::setSelect(const SelectConfig& select) {
  m_config.select = select;
  if (!m_session || m_shutdown) return;
  const ts_select_settings s = selectSettings(select);
  if (ts_session_set_select(m_session, &s) != TS_OK) fail(tr("TokenSelect settings not applied"), {});
  emit selectionUpdated(probe::frame(m_session, m_info.nLayer));
}

int InferenceWorker::documentCount() const {
  return int(std::count_if(m_log.begin(), m_log.end(), [](const Entry& e) { return e.kind == Entry::Document; }));
}

int InferenceWorker::logIndexOfDocument(int document) const {
  for (int i = 0, seen = 0; i < m_log.size(); ++i)
    if (m_log[i].kind == Entry::Document && seen++ == document) return i;
  return -1;
}

void InferenceWorker::addDocument(const QString& title, const QString& text) {
  if (!startJob()) return;
  if (!m_session) {
    fail(tr("No model"), tr("Open a model before adding documents."));
    emit documentRemoved(documentCount(), tr("no model"));
    return;
  }
  Entry e{Entry::Document, title.toUtf8(), text.toUtf8()};
  if (ts_session_add_document(m_session, e.title.constData(), e.text.constData(), size_t(e.text.size()), nullptr) !=
      TS_OK) {
    fail(tr("Could not add the document"), title);
    emit documentRemoved(documentCount(), tr("rejected"));
    return;
  }
  m_log.append(e);
  readAhead(documentCount() - 1);
}

// Runs what the cache lacks of the conversation so far. `document` >= 0: that document was
// just added, and leaves again when the read is cancelled or does not fit.
void InferenceWorker::readAhead(int document) {
  const QString label =
      document >= 0 ? QString::fromUtf8(m_log[logIndexOfDocument(document)].title) : tr("the conversation");
  emit jobStarted(Job::ReadDocuments, label);
  ts_session_reset_stats(m_session);
  Call call(this);
  const ts_status st = ts_session_prefill(m_session, &Call::onPrefillProgress, &call);
  if (st == TS_OK) {
    publish(true);
    if (document >= 0) emit documentRead(document);
  } else if (document >= 0) {
    if (st == TS_ERR_CONTEXT_FULL)
      fail(tr("Document too long"),
           tr("%1 does not fit in the context. Raise the context size in Settings, or start a new chat.").arg(label));
    else if (st != TS_CANCELLED)
      fail(tr("Could not read the document"), label);
    dropDocument(document, st == TS_CANCELLED ? tr("cancelled") : tr("not read"));
  } else if (st != TS_CANCELLED) {
    fail(tr("Could not read the conversation"), {});
  }
  emit jobFinished(Job::ReadDocuments);
}

void InferenceWorker::dropDocument(int document, const QString& why) {
  const int i = logIndexOfDocument(document);
  if (i < 0) return;
  m_log.removeAt(i);
  if (createSession()) replay();  // the library has no "remove document": a new session without it
  emit documentRemoved(document, why);
  publish(true);
}

void InferenceWorker::removeDocument(int document) {
  if (!startJob() || !m_session) return;
  dropDocument(document, tr("removed"));
  if (!m_log.isEmpty()) readAhead(-1);
}

// The UI waits for answerFinished after every ask() and regenerate(): send it even when the
// answer could not start.
void InferenceWorker::refuseAnswer(const QString& question) {
  if (!question.isNull()) emit questionDropped(question);
  AnswerResult r;
  r.end = AnswerEnd::Failed;
  emit answerFinished(r);
}

void InferenceWorker::ask(const QString& question, const GenerationConfig& config) {
  if (!startJob()) return;
  if (!m_session) {
    fail(tr("No model"), tr("Open a model first (Model ▸ Open model…)."));
    refuseAnswer(question);
    return;
  }
  int32_t before = 0;
  ts_session_message_count(m_session, &before);
  const QByteArray text = question.toUtf8();
  if (ts_session_add_message(m_session, TS_ROLE_USER, text.constData(), size_t(text.size())) != TS_OK) {
    fail(tr("Could not add the question"), {});
    refuseAnswer(question);
    return;
  }
  m_log.append({Entry::User, {}, text});
  generate(config, before);
}

void InferenceWorker::regenerate(const GenerationConfig& config) {
  if (!startJob()) return;
  if (!m_session || m_log.isEmpty() || m_log.last().kind != Entry::Assistant) {
    refuseAnswer({});
    return;
  }
  int32_t count = 0;
  ts_session_message_count(m_session, &count);
  if (ts_session_truncate_messages(m_session, count - 1) != TS_OK) {
    fail(tr("Could not regenerate"), {});
    refuseAnswer({});
    return;
  }
  m_log.removeLast();
  generate(config, count - 2);
}

// Answers the user message at index `messagesBefore`; afterwards the conversation holds the
// answer (partial when stopped), or, when not a word came, no longer holds the question.
void InferenceWorker::generate(const GenerationConfig& config, int messagesBefore) {
  emit jobStarted(Job::Answer, {});
  emit answerStarted();
  ts_session_reset_stats(m_session);
  Call call(this);
  ts_generate_options options;
  ts_generate_options_init(&options);
  options.max_tokens = config.maxTokens;
  options.temperature = float(config.temperature);
  options.top_p = float(config.topP);
  options.top_k = config.topK;
  options.min_p = float(config.minP);
  options.repeat_penalty = float(config.repeatPenalty);
  options.seed = config.seed;
  options.progress = &Call::onPrefillProgress;
  options.progress_user_data = &call;
  int32_t reason = TS_STOP_NONE;
  const ts_status st = ts_session_generate(m_session, &options, &Call::onToken, &call, &reason);

  AnswerResult result;
  result.text = call.text;
  switch (reason) {
    case TS_STOP_MAX_TOKENS: result.end = AnswerEnd::MaxTokens; break;
    case TS_STOP_CALLBACK:
    case TS_STOP_CANCELLED: result.end = AnswerEnd::Stopped; break;
    case TS_STOP_CONTEXT_FULL: result.end = AnswerEnd::ContextFull; break;
    default: result.end = st == TS_OK ? AnswerEnd::Finished : AnswerEnd::Failed;
  }
  if (st == TS_ERR_CONTEXT_FULL)
    fail(tr("The context is full"),
         tr("The conversation no longer fits in the context. Start a new chat, remove a document, or raise the "
            "context size in Settings."));
  else if (st != TS_OK && st != TS_CANCELLED)
    fail(tr("The answer failed"), {});

  int32_t after = 0;
  ts_session_message_count(m_session, &after);
  if (after == messagesBefore + 2) {
    size_t needed = 0;
    ts_session_get_message(m_session, after - 1, nullptr, nullptr, 0, &needed);
    QByteArray answer(qsizetype(needed), '\0');
    ts_session_get_message(m_session, after - 1, nullptr, answer.data(), needed + 1, &needed);
    m_log.append({Entry::Assistant, {}, answer});
  } else if (after == messagesBefore + 1) {
    ts_session_truncate_messages(m_session, messagesBefore);
    emit questionDropped(QString::fromUtf8(m_log.takeLast().text));
  }
  publish(true);
  result.stats = probe::stats(m_session);
  emit answerFinished(result);
  emit jobFinished(Job::Answer);
}

void InferenceWorker::newChat() {
  if (!startJob()) return;
  m_log.clear();
  if (m_session) ts_session_reset(m_session);
  emit chatCleared();
  if (m_session) publish(false);
}

// Tells the UI where each document sits and what the attention selected.
void InferenceWorker::publish(bool layouts) {
  if (!m_session) return;
  if (layouts) {
    for (int d = 0, n = documentCount(); d < n; ++d) {
      DocumentLayout l;
      if (probe::layout(m_session, d, &l)) emit documentLayout(l);
    }
  }
  emit selectionUpdated(probe::frame(m_session, m_info.nLayer));
}
