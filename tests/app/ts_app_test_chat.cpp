// The app as a person uses it, on the offscreen platform: the default model opens by itself, a
// document is added and read, a question is typed and answered while the heatmaps fill in;
// Cancel works while reading and while answering; a corrupt model is an error dialog, not a
// crash; closing mid-answer returns promptly; a document larger than the context is an error.
#include <QApplication>
#include <QClipboard>
#include <QElapsedTimer>
#include <QToolButton>
#include <QMessageBox>
#include <QPushButton>
#include <memory>

#include "app_test_support.h"
#include "chat_view.h"
#include "context_meter.h"
#include "document_view.h"
#include "heatmap_widget.h"
#include "inspector_panel.h"
#include "main_window.h"
#include "progress_panel.h"
#include "prompt_input.h"

namespace {
constexpr int kLoadMs = 120'000;
constexpr int kReadMs = 600'000;    // ~4k tokens at ~150 tok/s on a busy 2-core VM, with margin
constexpr int kAnswerMs = 600'000;  // may have to read the document again first
}  // namespace

class ChatTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void asksAboutADocument();
  void regeneratesAndCopies();
  void stopsAnAnswer();
  void cancelsReadingADocument();
  void corruptModelIsAnError();
  void closesMidAnswer();
  void documentTooLongIsAnError();

 private:
  void type(const QString& question);
  void closeErrorDialogs();

  QTemporaryDir m_dir;
  std::unique_ptr<MainWindow> m_window;
};

void ChatTest::initTestCase() {
  if (!apptest::haveModel()) QSKIP("the default model is missing (packaging/fetch-model.sh)");
  apptest::isolateSettings(m_dir);
  apptest::writeSettings(SelectConfig{false, 256, 16, 128, true, 0.9}, 24);
  m_window = std::make_unique<MainWindow>();
  QSignalSpy ready(m_window.get(), &MainWindow::modelReady);
  m_window->show();
  QVERIFY(ready.wait(kLoadMs));
  QCOMPARE(ready.first().first().value<ModelInfo>().nLayer, 30);
}

void ChatTest::type(const QString& question) {
  m_window->input()->setFocus();
  QTest::keyClicks(m_window->input(), question);
  QTest::keyClick(m_window->input(), Qt::Key_Return);
}

void ChatTest::closeErrorDialogs() {
  for (QMessageBox* box : m_window->findChildren<QMessageBox*>()) box->close();
}

void ChatTest::asksAboutADocument() {
  const QString doc = apptest::genesisPart(m_dir, "genesis-1-4.txt", 0, 14000);  // ~4k tokens
  QSignalSpy read(m_window.get(), &MainWindow::documentReady);
  QSignalSpy progress(m_window.get(), &MainWindow::prefillProgressed);
  QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
  m_window->addDocumentFile(doc);
  QVERIFY2(read.wait(kReadMs), qPrintable(errors.isEmpty() ? "no document" : errors.first().at(1).toString()));
  QVERIFY(progress.count() > 0);
  const PrefillProgress last = progress.last().first().value<PrefillProgress>();
  QCOMPARE(last.done, last.total);
  QVERIFY(last.total > 3000);
  QCOMPARE(m_window->inspector()->documentCount(), 1);
  QVERIFY(m_window->meter()->used() > 3000);

  const double scoresBefore = m_window->inspector()->heatmap()->scoreSum();
  const quint64 countsBefore = m_window->inspector()->documentCountSum();
  QSignalSpy started(m_window.get(), &MainWindow::answerStarted);
  QSignalSpy tokens(m_window.get(), &MainWindow::tokenShown);
  QSignalSpy finished(m_window.get(), &MainWindow::answerFinished);
  type("What did God create on the fourth day?");
  QVERIFY(m_window->input()->toPlainText().isEmpty());
  QVERIFY(m_window->isAnswering());
  QVERIFY(finished.wait(kAnswerMs));
  QCOMPARE(started.count(), 1);
  QVERIFY(tokens.count() > 0);

  const AnswerResult result = finished.first().first().value<AnswerResult>();
  qInfo().noquote() << "answer:" << result.text.trimmed() << "| tokens:" << tokens.count()
                    << "| decode tok/s:" << result.stats.decodeTokensPerSecond;
  QVERIFY(!result.text.trimmed().isEmpty());
  QCOMPARE(m_window->chat()->lastAnswer(), result.text);
  QVERIFY(!m_window->isAnswering());

  // The heatmap shows the last token's votes; the document is shaded by this answer's counts.
  const double scoresAfter = m_window->inspector()->heatmap()->scoreSum();
  const quint64 countsAfter = m_window->inspector()->documentCountSum();
  qInfo() << "heatmap vote sum" << scoresBefore << "->" << scoresAfter << "| document selection counts"
          << countsBefore << "->" << countsAfter;
  QVERIFY(scoresAfter > 0);
  QVERIFY(scoresAfter != scoresBefore);
  QVERIFY(countsAfter > 0);
  QVERIFY(countsAfter != countsBefore);
  const AnswerToken first = tokens.first().first().value<AnswerToken>();
  QCOMPARE(first.scores.size(), qsizetype(first.nLayer) * first.nBins);

  // Clicking the hottest bin highlights a passage of the document.
  m_window->inspector()->showHottestPassage();
  QCOMPARE(m_window->inspector()->documentView()->extraSelections().size(), 1);
}

void ChatTest::regeneratesAndCopies() {
  const QString before = m_window->chat()->lastAnswer();
  const int messages = m_window->chat()->messageCount();
  auto visible = [this](const char* name) -> QToolButton* {
    for (QToolButton* b : m_window->chat()->findChildren<QToolButton*>(name))
      if (b->isVisible()) return b;
    return nullptr;
  };
  QToolButton* copy = visible("copyButton");
  QVERIFY(copy);
  QTest::mouseClick(copy, Qt::LeftButton);
  QCOMPARE(QApplication::clipboard()->text(), before);

  QToolButton* regenerate = visible("regenerateButton");
  QVERIFY(regenerate);
  QSignalSpy finished(m_window.get(), &MainWindow::answerFinished);
  QTest::mouseClick(regenerate, Qt::LeftButton);
  QVERIFY(finished.wait(kAnswerMs));
  const QString again = m_window->chat()->lastAnswer();
  qInfo().noquote() << "regenerated:" << again.trimmed();
  QVERIFY(!again.trimmed().isEmpty());
  QCOMPARE(m_window->chat()->messageCount(), messages);  // replaced, not added
}

void ChatTest::stopsAnAnswer() {
  QSignalSpy tokens(m_window.get(), &MainWindow::tokenShown);
  QSignalSpy finished(m_window.get(), &MainWindow::answerFinished);
  type("Tell me everything that happens in these chapters, in detail.");
  QVERIFY(tokens.wait(kAnswerMs));
  m_window->cancel();
  QVERIFY(finished.wait(60'000));
  const AnswerResult result = finished.first().first().value<AnswerResult>();
  QCOMPARE(int(result.end), int(AnswerEnd::Stopped));
  QVERIFY(tokens.count() < 24);
  QVERIFY(!m_window->isAnswering());
  QCOMPARE(m_window->chat()->lastAnswer(), result.text);  // what was said so far stays
}

void ChatTest::cancelsReadingADocument() {
  const QString doc = apptest::genesisPart(m_dir, "genesis-5-9.txt", 14000, 30000);
  QSignalSpy progress(m_window.get(), &MainWindow::prefillProgressed);
  QSignalSpy dropped(m_window.get(), &MainWindow::documentDropped);
  QSignalSpy idle(m_window.get(), &MainWindow::idle);
  m_window->addDocumentFile(doc);
  QTRY_VERIFY_WITH_TIMEOUT(progress.count() > 0 && progress.last().first().value<PrefillProgress>().done > 0, kReadMs);
  QCOMPARE(m_window->inspector()->documentCount(), 2);
  QElapsedTimer clock;
  clock.start();
  QVERIFY(m_window->progress()->isVisible());
  m_window->cancel();
  QVERIFY(dropped.wait(60'000));
  qInfo() << "cancel took effect after" << clock.elapsed() << "ms";
  QCOMPARE(dropped.first().at(0).toInt(), 1);
  QCOMPARE(m_window->inspector()->documentCount(), 1);
  QTRY_VERIFY_WITH_TIMEOUT(!idle.isEmpty(), 60'000);
  QVERIFY(!m_window->progress()->isVisible());
}

void ChatTest::corruptModelIsAnError() {
  const QString bad = m_dir.filePath("corrupt.gguf");
  QFile f(bad);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(QByteArray("GGUF\x03\0\0\0", 8) + QByteArray(4096, '\x7f'));
  f.close();
  QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
  m_window->openModel(bad);
  QVERIFY(errors.wait(60'000));
  qInfo().noquote() << "error dialog:" << errors.first().at(0).toString() << "/" << errors.first().at(1).toString();
  QVERIFY(errors.first().at(0).toString().contains("model"));
  QVERIFY(errors.first().at(1).toString().contains("corrupt.gguf"));
  QTRY_VERIFY(!m_window->findChildren<QMessageBox*>().isEmpty());
  QVERIFY(m_window->isVisible());
  closeErrorDialogs();
}

void ChatTest::closesMidAnswer() {
  QSignalSpy tokens(m_window.get(), &MainWindow::tokenShown);
  type("Who is Adam?");
  QVERIFY(tokens.wait(kAnswerMs));  // the previous model is still there and answers
  QElapsedTimer clock;
  clock.start();
  m_window->close();
  m_window.reset();  // stops the answer and ends the inference thread
  qInfo() << "closed mid-answer in" << clock.elapsed() << "ms";
  QVERIFY(clock.elapsed() < 30'000);
}

void ChatTest::documentTooLongIsAnError() {
  QSettings().setValue("session/contextSize", 1024);
  MainWindow window;
  QSignalSpy ready(&window, &MainWindow::modelReady);
  QVERIFY(ready.wait(kLoadMs));
  QSignalSpy errors(&window, &MainWindow::errorShown);
  QSignalSpy dropped(&window, &MainWindow::documentDropped);
  window.addDocumentFile(m_dir.filePath("genesis-1-4.txt"));
  QVERIFY(dropped.wait(60'000));
  QCOMPARE(errors.count(), 1);
  qInfo().noquote() << "error dialog:" << errors.first().at(0).toString() << "/" << errors.first().at(1).toString();
  QVERIFY(errors.first().at(0).toString().contains("too long"));
  QCOMPARE(window.inspector()->documentCount(), 0);
}

QTEST_MAIN(ChatTest)
#include "ts_app_test_chat.moc"
