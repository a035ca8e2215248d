#include "main_window.h"

#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QLabel>
#include <QLoggingCategory>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QToolBar>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <utility>

#include "chat_view.h"
#include "context_meter.h"
#include "document_loader.h"
#include "inspector_panel.h"
#include "progress_panel.h"
#include "prompt_input.h"
#include "settings_dialog.h"

// State changes, for scripts that drive the app (QT_LOGGING_RULES="tokenselect.app.info=true").
Q_LOGGING_CATEGORY(lcApp, "tokenselect.app", QtWarningMsg)

namespace {

// Prefills shorter than this say little about speed (the question after a document).
constexpr qint64 kSpeedMinTokens = 32;

QString endNote(const AnswerResult& r, int tokens) {
  QString note = QObject::tr("%n token(s)", nullptr, tokens);
  if (r.stats.decodeTokensPerSecond > 0) note += QObject::tr(" · %1 tok/s").arg(r.stats.decodeTokensPerSecond, 0, 'f', 1);
  if (r.stats.firstTokenSeconds > 0) note += QObject::tr(" · first token after %1 s").arg(r.stats.firstTokenSeconds, 0, 'f', 1);
  switch (r.end) {
    case AnswerEnd::MaxTokens: note += QObject::tr(" · stopped at the token limit"); break;
    case AnswerEnd::Stopped: note += QObject::tr(" · stopped"); break;
    case AnswerEnd::ContextFull: note += QObject::tr(" · the context is full"); break;
    case AnswerEnd::Failed: note += QObject::tr(" · failed"); break;
    case AnswerEnd::Finished: break;
  }
  return note;
}

bool isModelFile(const QString& path) { return QFileInfo(path).suffix().compare("gguf", Qt::CaseInsensitive) == 0; }

}  // namespace

MainWindow::MainWindow(const QString& modelPath, QWidget* parent) : QMainWindow(parent), m_settings(AppSettings::load()), m_worker(new InferenceWorker) {
  setWindowTitle(tr("TokenSelect Chat"));
  setWindowIcon(QIcon(":/icons/tokenselect-chat.svg"));
  setAcceptDrops(true);
  m_worker->moveToThread(&m_thread);
  connect(&m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
  m_thread.setObjectName("inference");
  m_thread.start();

  buildLayout();
  buildActions();
  connectWorker();
  const QSettings s;
  if (!restoreGeometry(s.value("window/geometry").toByteArray())) resize(1360, 860);

  const QString model = !modelPath.isEmpty()                      ? modelPath
                        : QFileInfo::exists(m_settings.modelPath) ? m_settings.modelPath
                                                                  : defaultModelPath();
  if (!model.isEmpty())
    openModel(model);
  else
    m_modelLabel->setText(tr("No model: Model ▸ Open model… (the default one: packaging/fetch-model.sh)"));
  m_input->setFocus();
}

MainWindow::~MainWindow() {
  m_worker->shutdown();  // the running call returns within a chunk or a token
  m_thread.quit();
  m_thread.wait();  // the worker is deleted on its thread as it ends
}

void MainWindow::buildLayout() {
  m_chat = new ChatView;
  m_chat->setObjectName("chat");
  m_input = new PromptInput;
  m_input->setObjectName("prompt");
  m_send = new QPushButton(tr("Send"));
  m_send->setObjectName("sendButton");
  m_send->setDefault(true);
  m_progress = new ProgressPanel;
  m_progress->setObjectName("progress");

  auto* left = new QWidget;
  auto* column = new QVBoxLayout(left);
  column->setContentsMargins(6, 6, 6, 6);
  column->addWidget(m_chat, 1);
  column->addWidget(m_progress);
  auto* inputRow = new QHBoxLayout;
  inputRow->addWidget(m_input, 1);
  inputRow->addWidget(m_send);
  column->addLayout(inputRow);

  m_inspector = new InspectorPanel;
  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(left);
  split->addWidget(m_inspector);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);
  setCentralWidget(split);

  m_modelLabel = new QLabel;
  m_speed = new QLabel;
  m_speed->setObjectName("speed");
  m_meter = new ContextMeter;
  statusBar()->addWidget(m_modelLabel, 1);
  statusBar()->addPermanentWidget(m_speed);
  statusBar()->addPermanentWidget(m_meter);

  connect(m_input, &PromptInput::submitted, this, &MainWindow::send);
  connect(m_send, &QPushButton::clicked, this, [this] { m_answering ? stopAnswer() : send(); });
  connect(m_progress, &ProgressPanel::cancelRequested, this, &MainWindow::cancel);
  connect(m_chat, &ChatView::regenerateRequested, this, [this] {
    if (m_answering) return;
    m_chat->dropLastAnswer();
    m_answering = true;
    updateSendButton();
    QMetaObject::invokeMethod(m_worker, [w = m_worker, g = m_settings.generation] { w->regenerate(g); });
  });
  connect(m_chat, &ChatView::answerTokenClicked, m_inspector, &InspectorPanel::selectAnswerToken);
  connect(m_inspector, &InspectorPanel::removeDocumentRequested, this, [this](int i) {
    QMetaObject::invokeMethod(m_worker, [w = m_worker, i] { w->removeDocument(i); });
  });
}

void MainWindow::buildActions() {
  QMenu* model = menuBar()->addMenu(tr("&Model"));
  QAction* open = model->addAction(tr("&Open model…"), this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open a model"), QFileInfo(m_model.path).path(),
                                                      tr("GGUF models (*.gguf);;All files (*)"));
    if (!path.isEmpty()) openModel(path);
  });
  open->setShortcut(QKeySequence(tr("Ctrl+M")));
  if (const QString def = defaultModelPath(); !def.isEmpty())
    model->addAction(tr("Open the &default model (%1)").arg(QFileInfo(def).fileName()), this, [this, def] { openModel(def); });
  model->addSeparator();
  model->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* docs = menuBar()->addMenu(tr("&Document"));
  QAction* add = docs->addAction(tr("&Add document…"), QKeySequence::Open, this, [this] {
    const QStringList paths = QFileDialog::getOpenFileNames(this, tr("Add documents to the context"),
                                                            QFileInfo(m_settings.recentDocuments.value(0)).path(),
                                                            documentFileFilter());
    for (const QString& p : paths) addDocumentFile(p);
  });
  m_recentMenu = docs->addMenu(tr("&Recent documents"));
  rebuildRecentMenu();
  QMenu* examples = docs->addMenu(tr("&Examples"));
  for (const QString& p : exampleDocuments())
    examples->addAction(QFileInfo(p).fileName(), this, [this, p] { addDocumentFile(p); });
  examples->setEnabled(!examples->isEmpty());
  docs->addAction(tr("Show the &hottest passage"), m_inspector, &InspectorPanel::showHottestPassage);

  QMenu* chat = menuBar()->addMenu(tr("&Chat"));
  QAction* fresh = chat->addAction(tr("&New chat"), QKeySequence::New, this, &MainWindow::newChat);
  chat->addAction(tr("&Stop / cancel"), QKeySequence(Qt::Key_Escape), this, &MainWindow::cancel);
  chat->addAction(tr("&Copy last answer"), QKeySequence(tr("Ctrl+Shift+C")), this,
                  [this] { QApplication::clipboard()->setText(m_chat->lastAnswer()); });
  chat->addSeparator();
  m_denseAction = chat->addAction(tr("&Dense attention"));
  m_denseAction->setCheckable(true);
  m_denseAction->setChecked(m_settings.session.select.dense);
  m_denseAction->setToolTip(tr("Attend every token (the baseline) instead of TokenSelect's selection, to compare "
                               "answers and speed"));
  connect(m_denseAction, &QAction::toggled, this, &MainWindow::setDense);
  QAction* settings = chat->addAction(tr("S&ettings…"), QKeySequence::Preferences, this, &MainWindow::showSettings);
  settings->setShortcut(QKeySequence(tr("Ctrl+,")));

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About"), this, [this] {
    QMessageBox::about(this, tr("About TokenSelect Chat"),
                       tr("<b>TokenSelect Chat</b> %1<p>Chat with whole long documents on your own computer. Each "
                          "layer attends only to the tokens that matter (TokenSelect, arXiv 2411.02886); the "
                          "heatmaps show which.</p>")
                           .arg(TS_VERSION));
  });

  QToolBar* bar = addToolBar(tr("Main"));
  bar->setObjectName("mainToolBar");
  bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
  bar->addAction(open);
  bar->addAction(add);
  bar->addAction(fresh);
  bar->addSeparator();
  bar->addAction(m_denseAction);
  bar->addAction(settings);
}

void MainWindow::connectWorker() {
  InferenceWorker* w = m_worker;
  connect(w, &InferenceWorker::jobStarted, this, &MainWindow::onJobStarted);
  connect(w, &InferenceWorker::jobFinished, this, &MainWindow::onJobFinished);
  connect(w, &InferenceWorker::modelProgress, m_progress, &ProgressPanel::setBytes);
  connect(w, &InferenceWorker::modelLoaded, this, [this](const ModelInfo& info) {
    m_model = info;
    m_settings.modelPath = info.path;
    m_settings.save();
    const QString name = info.name.isEmpty() ? QFileInfo(info.path).completeBaseName() : info.name;
    setWindowTitle(tr("%1 — TokenSelect Chat").arg(name));
    m_modelLabel->setText(tr("%1 · %2 · %3 layers · %4M parameters · trained on %L5 tokens")
                              .arg(name, info.arch)
                              .arg(info.nLayer)
                              .arg(info.nParams / 1000000)
                              .arg(info.nCtxTrain));
    qCInfo(lcApp) << "model ready:" << info.path;
    emit modelReady(info);
  });
  connect(w, &InferenceWorker::prefillProgress, this, [this](const PrefillProgress& p) {
    if (m_progress->isHidden()) m_progress->start(tr("Reading the prompt"));
    m_progress->setTokens(p);
    emit prefillProgressed(p);
  });
  connect(w, &InferenceWorker::documentRead, this, [this](int i) {
    qCInfo(lcApp) << "document read:" << i;
    statusBar()->showMessage(tr("Document read: ask away."), 4000);
    emit documentReady(i);
  });
  connect(w, &InferenceWorker::documentRemoved, this, [this](int i, const QString& why) {
    m_inspector->removeDocument(i);
    statusBar()->showMessage(tr("Document removed (%1).").arg(why), 6000);
    emit documentDropped(i, why);
  });
  connect(w, &InferenceWorker::documentLayout, m_inspector, &InspectorPanel::setDocumentLayout);
  connect(w, &InferenceWorker::selectionUpdated, this, &MainWindow::onSelection);
  connect(w, &InferenceWorker::answerStarted, this, [this] {
    if (std::exchange(m_stopPending, false)) cancel();
    m_answerBegun = true;
    m_answerTokens = 0;
    m_chat->beginAnswer();
    m_chat->setRegenerateEnabled(false);
    m_inspector->beginAnswer();
    qCInfo(lcApp) << "answer started";
    emit answerStarted();
  });
  connect(w, &InferenceWorker::tokenGenerated, this, [this](const AnswerToken& t) {
    if (m_answerTokens++ == 0) m_progress->finish();
    m_chat->appendToAnswer(t.piece);
    m_inspector->addAnswerToken(t);
    if (m_answerTokens == 8) qCInfo(lcApp) << "answer streaming";  // tests/app/screenshot.sh waits for it
    emit tokenShown(t);
  });
  connect(w, &InferenceWorker::questionDropped, this, [this](const QString& question) {
    if (std::exchange(m_answerBegun, false)) m_chat->dropLastAnswer();
    m_chat->removeLastQuestion();
    if (m_input->toPlainText().isEmpty()) m_input->setPlainText(question);
  });
  connect(w, &InferenceWorker::answerFinished, this, &MainWindow::onAnswerFinished);
  connect(w, &InferenceWorker::chatCleared, this, [this] {
    m_chat->clear();
    m_inspector->clearDocuments();
  });
  connect(w, &InferenceWorker::failed, this, &MainWindow::showError);
}

void MainWindow::onJobStarted(InferenceWorker::Job job, const QString& label) {
  ++m_jobs;
  m_job = job;
  switch (job) {
    case InferenceWorker::Job::LoadModel: m_progress->start(tr("Loading %1").arg(label)); break;
    case InferenceWorker::Job::ReadDocuments: m_progress->start(tr("Reading %1").arg(label)); break;
    case InferenceWorker::Job::Answer: break;  // the panel shows up only if the prompt takes a while
  }
}

void MainWindow::onJobFinished(InferenceWorker::Job) {
  m_job.reset();
  m_progress->finish();
  if (--m_jobs == 0) {
    qCInfo(lcApp) << "idle";
    emit idle();
  }
}

void MainWindow::onSelection(const SelectionFrame& frame) {
  m_inspector->setSelection(frame);
  const EngineStats& s = frame.stats;
  m_meter->setUsage(s.nTokens, m_model.nCtxTrain, s.nCtx);
  if (s.prefillTokens >= kSpeedMinTokens && s.prefillTokensPerSecond > 0) m_prefillSpeed = s.prefillTokensPerSecond;
  QString speed = m_prefillSpeed > 0 ? tr("Prefill %1 tok/s").arg(m_prefillSpeed, 0, 'f', 0) : QString();
  if (m_answering && s.firstTokenSeconds > 0) speed += tr(" · first token %1 s").arg(s.firstTokenSeconds, 0, 'f', 1);
  if (m_answering && s.decodeTokensPerSecond > 0) speed += tr(" · decode %1 tok/s").arg(s.decodeTokensPerSecond, 0, 'f', 1);
  if (!speed.isEmpty()) m_speed->setText(speed);
}

void MainWindow::onAnswerFinished(const AnswerResult& r) {
  m_answering = false;
  m_stopPending = false;
  updateSendButton();
  m_chat->setRegenerateEnabled(true);
  if (std::exchange(m_answerBegun, false)) {
    m_chat->finishAnswer(endNote(r, m_answerTokens));
    if (r.stats.prefillTokens >= kSpeedMinTokens) m_prefillSpeed = r.stats.prefillTokensPerSecond;
    m_speed->setText(tr("Prefill %1 tok/s · first token %2 s · decode %3 tok/s")
                         .arg(m_prefillSpeed, 0, 'f', 0)
                         .arg(r.stats.firstTokenSeconds, 0, 'f', 1)
                         .arg(r.stats.decodeTokensPerSecond, 0, 'f', 1));
    m_inspector->showHottestPassage();  // the evidence: where this answer's attention went most
  }
  qCInfo(lcApp) << "answer finished:" << m_answerTokens << "tokens";
  emit answerFinished(r);
}

void MainWindow::updateSendButton() {
  m_send->setText(m_answering ? tr("Stop") : tr("Send"));
  m_send->setToolTip(m_answering ? tr("Stop the answer (Esc)") : tr("Send the question (Enter)"));
}

void MainWindow::openFiles(const QStringList& paths) {
  for (const QString& p : paths) isModelFile(p) ? openModel(p) : addDocumentFile(p);
}

void MainWindow::openModel(const QString& path) {
  QMetaObject::invokeMethod(m_worker, [w = m_worker, path, c = m_settings.session] { w->loadModel(path, c); });
}

// Reads the file off the UI thread (a big PDF takes a while), then hands the text to the worker.
void MainWindow::addDocumentFile(const QString& path) {
  auto* watcher = new QFutureWatcher<LoadedDocument>(this);
  connect(watcher, &QFutureWatcher<LoadedDocument>::finished, this, [this, watcher] {
    watcher->deleteLater();
    const LoadedDocument d = watcher->result();
    if (d.text.isNull()) {
      showError(tr("Could not open %1").arg(d.title), tr("%1: %2").arg(QDir::toNativeSeparators(d.path), d.error));
      return;
    }
    m_settings.addRecentDocument(d.path);
    m_settings.save();
    rebuildRecentMenu();
    m_inspector->addDocument(d.title, d.text);
    QMetaObject::invokeMethod(m_worker, [w = m_worker, d] { w->addDocument(d.title, d.text); });
  });
  watcher->setFuture(QtConcurrent::run(loadDocument, path));
}

void MainWindow::send() {
  const QString question = m_input->toPlainText().trimmed();
  if (question.isEmpty() || m_answering) return;
  m_chat->addQuestion(question);
  m_input->clear();
  m_answering = true;
  updateSendButton();
  QMetaObject::invokeMethod(m_worker, [w = m_worker, question, g = m_settings.generation] { w->ask(question, g); });
}

void MainWindow::cancel() { m_worker->cancel(); }

void MainWindow::stopAnswer() {
  if (m_job == InferenceWorker::Job::Answer)
    cancel();
  else if (m_answering)
    m_stopPending = true;
}

void MainWindow::newChat() {
  m_stopPending = m_answering;
  if (m_job && *m_job != InferenceWorker::Job::LoadModel) cancel();
  QMetaObject::invokeMethod(m_worker, [w = m_worker] { w->newChat(); });
}

void MainWindow::setDense(bool dense) {
  m_settings.session.select.dense = dense;
  m_settings.save();
  QMetaObject::invokeMethod(m_worker, [w = m_worker, s = m_settings.session.select] { w->setSelect(s); });
  statusBar()->showMessage(dense ? tr("Dense attention: every token, every step (the baseline).")
                                 : tr("TokenSelect: each layer attends the tokens that matter."),
                           5000);
}

void MainWindow::showSettings() {
  SettingsDialog dialog(m_settings.session, m_settings.generation, m_model.nCtxTrain, this);
  if (dialog.exec() != QDialog::Accepted) return;
  const SessionConfig before = m_settings.session;
  m_settings.session = dialog.session();
  m_settings.generation = dialog.generation();
  m_settings.save();
  const SessionConfig& now = m_settings.session;
  {
    const QSignalBlocker block(m_denseAction);
    m_denseAction->setChecked(now.select.dense);
  }
  if (now.nCtx != before.nCtx || now.threads != before.threads || now.systemPrompt != before.systemPrompt)
    QMetaObject::invokeMethod(m_worker, [w = m_worker, now] { w->setSessionConfig(now); });
  else
    QMetaObject::invokeMethod(m_worker, [w = m_worker, s = now.select] { w->setSelect(s); });
}

void MainWindow::rebuildRecentMenu() {
  m_recentMenu->clear();
  for (const QString& p : m_settings.recentDocuments)
    m_recentMenu->addAction(QFileInfo(p).fileName(), this, [this, p] { addDocumentFile(p); })->setToolTip(p);
  m_recentMenu->setEnabled(!m_settings.recentDocuments.isEmpty());
}

// Non-modal, so the app (and a test driving it) keeps running behind the message.
void MainWindow::showError(const QString& title, const QString& message) {
  qCInfo(lcApp) << "error:" << title << message;
  auto* box = new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->setObjectName("errorDialog");
  box->open();
  emit errorShown(title, message);
}

void MainWindow::closeEvent(QCloseEvent* event) {
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  m_settings.save();
  m_worker->shutdown();
  event->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  QStringList paths;
  for (const QUrl& url : event->mimeData()->urls())
    if (url.isLocalFile()) paths << url.toLocalFile();
  openFiles(paths);
  event->acceptProposedAction();
}
