// The app's parts that need no model: token-to-text mapping, document loading and its errors,
// the heatmap widgets rendering from plain arrays, and settings kept across the dialog and restarts.
#include <QElapsedTimer>
#include <QPainter>
#include <QPdfWriter>
#include <QScrollBar>

#include "app_settings.h"
#include "app_test_support.h"
#include "document_loader.h"
#include "document_view.h"
#include "heatmap_widget.h"
#include "minimap.h"
#include "settings_dialog.h"

class UnitsTest : public QObject {
  Q_OBJECT

 private slots:
  void utf16StartsFollowUtf8Offsets();
  void loadsTextAndNormalisesNewlines();
  void rejectsBinaryAndLegacyEncodings();
  void readsAPdf();
  void corruptPdfIsAnError();
  void heatmapRendersScores();
  void documentViewShadesTokens();
  void aHundredThousandTokenDocumentStaysFast();
  void scoringKeysSettingIsKept();

 private:
  QString write(const QString& name, const QByteArray& bytes);
  QTemporaryDir m_dir;
};

QString UnitsTest::write(const QString& name, const QByteArray& bytes) {
  QFile f(m_dir.filePath(name));
  f.open(QIODevice::WriteOnly);
  f.write(bytes);
  return f.fileName();
}

void UnitsTest::utf16StartsFollowUtf8Offsets() {
  // "aé😀b": bytes a(0) é(1-2) 😀(3-6) b(7); UTF-16 a(0) é(1) 😀(2-3) b(4).
  const QString text = QString::fromUtf8("a\xc3\xa9\xf0\x9f\x98\x80" "b");
  QCOMPARE(utf16Starts(text, {0, 1, 3, 7}), (QVector<int>{0, 1, 2, 4}));
  // A byte-level token that starts inside a character maps to that character.
  QCOMPARE(utf16Starts(text, {0, 2, 5, 7}), (QVector<int>{0, 1, 2, 4}));
}

void UnitsTest::loadsTextAndNormalisesNewlines() {
  const LoadedDocument d = loadDocument(write("notes.md", "\xef\xbb\xbf# Title\r\nline two\r\n"));
  QVERIFY2(d.error.isEmpty(), qPrintable(d.error));
  QCOMPARE(d.title, QString("notes.md"));
  QCOMPARE(d.text, QString("# Title\nline two\n"));
}

void UnitsTest::rejectsBinaryAndLegacyEncodings() {
  const LoadedDocument binary = loadDocument(write("a.txt", QByteArray("abc\0def", 7)));
  QVERIFY(binary.text.isNull());
  QVERIFY(binary.error.contains("binary"));
  const LoadedDocument latin1 = loadDocument(write("b.txt", "caf\xe9"));
  QVERIFY(latin1.text.isNull());
  QVERIFY(latin1.error.contains("UTF-8"));
  QVERIFY(loadDocument(m_dir.filePath("missing.txt")).text.isNull());
  QVERIFY(loadDocument(write("empty.txt", " \n")).error.contains("empty"));
}

// A two-page PDF written with QPdfWriter comes back as its text, pages apart.
void UnitsTest::readsAPdf() {
  const QString path = m_dir.filePath("story.pdf");
  {
    QPdfWriter pdf(path);
    QPainter p(&pdf);
    p.setFont(QFont("DejaVu Sans", 12));
    p.drawText(QPointF(200, 400), "The keeper is Maren Holt.");
    pdf.newPage();
    p.drawText(QPointF(200, 400), "Her dog is Pepper.");
  }
  const LoadedDocument d = loadDocument(path);
  QVERIFY2(d.error.isEmpty(), qPrintable(d.error));
  QVERIFY(d.text.contains("Maren Holt"));
  QVERIFY(d.text.indexOf("Pepper") > d.text.indexOf("Maren Holt"));
}

void UnitsTest::corruptPdfIsAnError() {
  const LoadedDocument d = loadDocument(write("broken.pdf", "%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage"));
  QVERIFY(d.text.isNull());
  QVERIFY(!d.error.isEmpty());
  qInfo().noquote() << "broken.pdf:" << d.error;
}

void UnitsTest::heatmapRendersScores() {
  HeatmapWidget w;
  w.resize(400, 200);
  // Pixels in the palette's bright yellow end (white and black text are not).
  auto hot = [](const QImage& img) {
    int n = 0;
    for (int y = 0; y < img.height(); ++y)
      for (int x = 0; x < img.width(); ++x) {
        const QRgb c = img.pixel(x, y);
        n += qRed(c) > 230 && qGreen(c) > 200 && qBlue(c) < 190;
      }
    return n;
  };
  QCOMPARE(w.scoreSum(), 0.0);
  QCOMPARE(hot(w.grab().toImage()), 0);
  QVector<float> scores(30 * 64, 0.f);
  scores[5 * 64 + 10] = 3.f;
  w.setScores(scores, 30, 64, 10'000);
  QCOMPARE(w.scoreSum(), 3.0);
  // One cell of a 364 x 140 plot: about (364 / 64) x (140 / 30) pixels.
  const int cell = hot(w.grab().toImage());
  QVERIFY2(cell > 10 && cell < 60, qPrintable(QString::number(cell)));
  w.setBinnedCounts(QVector<quint64>(64, 2), 10'000);
  w.setDocuments({{100, 9000, "doc"}});
  QVERIFY(hot(w.grab().toImage()) > cell);  // the counts strip lights up too

  Minimap m;
  m.resize(20, 300);
  QVector<quint32> counts(1000, 0);
  counts[500] = 7;
  m.setCounts(counts, 100, 800);
  m.setViewRange(0, 80);
  QVERIFY(!m.grab().isNull());
}

void UnitsTest::documentViewShadesTokens() {
  DocumentView v;
  v.resize(400, 300);
  const QString text = "In the beginning God created the heaven and the earth.\nAnd the earth was without form.";
  v.showText(text);
  QVector<quint64> offsets;
  for (int i = 0; i < text.size(); i += 4) offsets << quint64(i);
  v.setTokenLayout(10, utf16Starts(text, offsets));
  QVector<quint32> counts(10 + offsets.size() + 5, 0);
  counts[12] = 9;  // document token 2
  v.setSelection(counts, counts.size(), 4, 3, false);
  QCOMPARE(v.count(2), 9u);
  QCOMPARE(v.tokenAtPosition(12), 2);
  QCOMPARE(v.tokenAtPosition(5), -1);
  DocumentView unshaded;
  unshaded.resize(400, 300);
  unshaded.showText(text);
  QVERIFY(v.grab().toImage() != unshaded.grab().toImage());
  v.showPassage(1, 3);
  QCOMPARE(v.extraSelections().size(), 1);
}

// Prints what one heatmap update costs the UI thread with a ~114k-token document (Genesis twice,
// a token per word and per space-run): loading the text once, then per frame the counts, the
// minimap, the heatmap image and a repaint of the visible text.
void UnitsTest::aHundredThousandTokenDocumentStaysFast() {
  QFile f(TS_GENESIS);
  QVERIFY(f.open(QIODevice::ReadOnly));
  const QByteArray bytes = f.readAll();
  const QByteArray twice = bytes + bytes;
  const QString text = QString::fromUtf8(twice);
  QVector<quint64> offsets;
  for (qsizetype i = 0; i < twice.size(); ++i)
    if (i == 0 || (twice[i] == ' ') != (twice[i - 1] == ' ')) offsets << quint64(i);
  const qint64 first = 40;
  const qint64 n = first + offsets.size() + 30;
  QVERIFY(offsets.size() > 100'000);

  QElapsedTimer clock;
  DocumentView view;
  view.resize(700, 500);
  view.show();
  clock.start();
  view.showText(text);
  view.setTokenLayout(first, utf16Starts(text, offsets));
  const qint64 loadMs = clock.elapsed();

  Minimap minimap;
  minimap.resize(20, 500);
  HeatmapWidget heatmap;
  heatmap.resize(700, 250);
  QVector<quint32> counts(n);
  QVector<float> scores(30 * 512);
  double worst = 0;
  for (int frame = 0; frame < 20; ++frame) {
    for (qint64 p = 0; p < n; ++p) counts[p] = quint32((p * 2654435761u + frame) % 97);
    for (int i = 0; i < scores.size(); ++i) scores[i] = float((i * 31 + frame) % 17);
    view.verticalScrollBar()->setValue(view.verticalScrollBar()->maximum() * frame / 20);
    clock.restart();
    view.setSelection(counts, n, 128, 512, false);
    minimap.setCounts(counts, first, int(offsets.size()));
    heatmap.setScores(scores, 30, 512, n);
    view.viewport()->repaint();
    minimap.repaint();
    heatmap.repaint();
    worst = std::max(worst, clock.nsecsElapsed() / 1e6);
  }
  qInfo("%lld-token document: text and token layout %lld ms once; worst heatmap update and repaint %.1f ms",
        qlonglong(offsets.size()), qlonglong(loadMs), worst);
}

// The GPU's fp8 scoring keys: the dialog shows and returns the setting, and it survives a restart.
void UnitsTest::scoringKeysSettingIsKept() {
  for (bool fp8 : {true, false}) {
    SessionConfig s;
    s.select.fp8Keys = fp8;
    const SettingsDialog dialog(s, GenerationConfig{}, 8192);
    QCOMPARE(dialog.session().select.fp8Keys, fp8);
  }
  apptest::isolateSettings(m_dir);
  AppSettings a = AppSettings::load();
  QVERIFY(!a.session.select.fp8Keys);  // off unless asked for
  a.session.select.fp8Keys = true;
  a.save();
  QVERIFY(AppSettings::load().session.select.fp8Keys);
}

QTEST_MAIN(UnitsTest)
#include "ts_app_test_units.moc"
