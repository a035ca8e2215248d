// The main window: the chat on the left, what the attention did on the right, the job in
// progress and the context meter below. It owns the inference thread and talks to it only
// through queued calls and signals.
#pragma once
#include <QMainWindow>
#include <QThread>
#include <optional>

#include "app_settings.h"
#include "engine_types.h"
#include "inference_worker.h"

class ChatView;
class ContextMeter;
class InspectorPanel;
class ProgressPanel;
class PromptInput;
class QAction;
class QLabel;
class QMenu;
class QPushButton;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  // `model`: the GGUF file to open; empty: the last one used, else the default model if present.
  explicit MainWindow(const QString& model = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  ChatView* chat() const { return m_chat; }
  InspectorPanel* inspector() const { return m_inspector; }
  ProgressPanel* progress() const { return m_progress; }
  PromptInput* input() const { return m_input; }
  ContextMeter* meter() const { return m_meter; }
  bool isAnswering() const { return m_answering; }

 public slots:
  // Models (.gguf) are opened, anything else is added as a document.
  void openFiles(const QStringList& paths);
  void openModel(const QString& path);
  void addDocumentFile(const QString& path);
  // Sends what is in the question box.
  void send();
  // Stops the job in progress: model load, document read or answer.
  void cancel();
  // Stops the answer, also one still waiting for a document to be read.
  void stopAnswer();
  void newChat();

 signals:
  void modelReady(const ModelInfo& info);
  void documentReady(int index);
  void documentDropped(int index, const QString& why);
  void prefillProgressed(const PrefillProgress& progress);
  void answerStarted();
  void tokenShown(const AnswerToken& token);
  void answerFinished(const AnswerResult& result);
  void errorShown(const QString& title, const QString& message);
  void idle();

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  void buildActions();
  void buildLayout();
  void connectWorker();
  void rebuildRecentMenu();
  void showError(const QString& title, const QString& message);
  void showSettings();
  void setDense(bool dense);
  void onJobStarted(InferenceWorker::Job job, const QString& label);
  void onJobFinished(InferenceWorker::Job job);
  void onAnswerFinished(const AnswerResult& result);
  void onSelection(const SelectionFrame& frame);
  void updateSendButton();

  AppSettings m_settings;
  ModelInfo m_model;
  QThread m_thread;
  InferenceWorker* m_worker;
  int m_jobs = 0;             // jobs started and not finished
  std::optional<InferenceWorker::Job> m_job;  // the one running now
  bool m_answering = false;   // an answer is queued or streaming
  bool m_answerBegun = false; // its bubble is in the chat
  bool m_stopPending = false; // Stop pressed while the answer waited for a document
  int m_answerTokens = 0;
  double m_prefillSpeed = 0;  // of the last prefill long enough to say

  ChatView* m_chat;
  PromptInput* m_input;
  QPushButton* m_send;
  ProgressPanel* m_progress;
  InspectorPanel* m_inspector;
  ContextMeter* m_meter;
  QLabel* m_modelLabel;
  QLabel* m_speed;
  QMenu* m_recentMenu = nullptr;
  QAction* m_denseAction = nullptr;
};
