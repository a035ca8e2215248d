// The engine's own thread: every C API call on the model and session happens here, in a QObject
// moved to a QThread (as GPT4All's chatllm does). The UI posts requests through queued slots and
// only listens to signals, so it never waits for the model.
#pragma once
#include <QList>
#include <QMutex>
#include <QObject>
#include <QString>
#include <atomic>

#include "engine_types.h"

struct ts_model;
struct ts_session;

class InferenceWorker : public QObject {
  Q_OBJECT

 public:
  enum class Job { LoadModel, ReadDocuments, Answer };
  Q_ENUM(Job)

  explicit InferenceWorker(QObject* parent = nullptr);
  ~InferenceWorker() override;

  // Any thread: the running job ends within one prefill chunk or one token. A prefill is rolled
  // back; an answer keeps what it has said so far.
  void cancel();
  // Any thread: cancels, and turns every job still queued into a no-op (the window is closing).
  void shutdown();

 public slots:
  // Opens a model and (re)creates the session on it, replaying the conversation so far. A model
  // that fails to open leaves the previous one in place.
  void loadModel(const QString& path, const SessionConfig& config);
  // Recreates the session with new options, replaying the conversation (the KV cache is lost).
  void setSessionConfig(const SessionConfig& config);
  // TokenSelect settings take effect from the next step; no rebuild.
  void setSelect(const SelectConfig& select);
  // Adds a whole document to the next user message and reads it ahead while the question is
  // typed. Cancelled or too long for the context, it is removed again.
  void addDocument(const QString& title, const QString& text);
  void removeDocument(int document);
  // Ends with answerFinished, whatever happens.
  void ask(const QString& question, const GenerationConfig& config);
  // Drops the last answer and answers its question again; ends with answerFinished.
  void regenerate(const GenerationConfig& config);
  void newChat();

 signals:
  void jobStarted(InferenceWorker::Job job, const QString& label);
  void jobFinished(InferenceWorker::Job job);
  void modelProgress(qint64 bytesDone, qint64 bytesTotal);
  void modelLoaded(const ModelInfo& info);
  void prefillProgress(const PrefillProgress& progress);
  void documentRead(int document);
  void documentRemoved(int document, const QString& why);
  void documentLayout(const DocumentLayout& layout);
  void answerStarted();
  void tokenGenerated(const AnswerToken& token);
  // The answer ended without a word: its question was taken back out of the conversation.
  void questionDropped(const QString& question);
  void answerFinished(const AnswerResult& result);
  void selectionUpdated(const SelectionFrame& frame);
  void chatCleared();
  void failed(const QString& title, const QString& message);

 private:
  // The conversation as the app sees it, replayed into a new session when one is rebuilt.
  struct Entry {
    enum Kind { Document, User, Assistant } kind;
    QByteArray title;
    QByteArray text;
  };
  struct Call;  // one long C call's callback context
  friend struct Call;

  bool startJob();
  bool createSession();
  bool replay();
  void readAhead(int document);
  void generate(const GenerationConfig& config, int messagesBefore);
  void refuseAnswer(const QString& question);
  void dropDocument(int document, const QString& why);
  void publish(bool layouts);
  int documentCount() const;
  int logIndexOfDocument(int document) const;
  void setSession(ts_session* session);
  void fail(const QString& title, const QString& what);

  ts_model* m_model = nullptr;
  ts_session* m_session = nullptr;
  QMutex m_sessionMutex;  // guards m_session against cancel() from the UI thread
  std::atomic<bool> m_cancel{false};
  std::atomic<bool> m_shutdown{false};
  SessionConfig m_config;
  ModelInfo m_info;
  QList<Entry> m_log;
};
