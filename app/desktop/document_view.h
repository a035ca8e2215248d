// A document's text with each token's background shaded by how often the attention selected it
// during the current answer. Only the blocks on screen are painted, straight from the per-token
// counts, so a 100k-token document scrolls and updates as fast as a short one.
#pragma once
#include <QPlainTextEdit>
#include <QVector>

// Per token, the UTF-16 index in `text` where it starts, from the UTF-8 byte offsets the library
// reports (a token that starts inside a character maps to that character).
QVector<int> utf16Starts(const QString& text, const QVector<quint64>& byteOffsets);

class DocumentView : public QPlainTextEdit {
  Q_OBJECT

 public:
  explicit DocumentView(QWidget* parent = nullptr);

  void showText(const QString& text);
  // Where the document's tokens are: the cache position of the first, and each one's start in
  // the text (utf16Starts).
  void setTokenLayout(qint64 firstPosition, const QVector<int>& tokenStarts);
  // Selection counts of every cached token (the document's are a slice), and the sinks
  // [0, nInit) and local window [nTokens - nLocal, nTokens) that are always attended.
  void setSelection(const QVector<quint32>& counts, qint64 nTokens, int nInit, int nLocal, bool dense);

  int tokenCount() const { return int(m_starts.size()); }
  qint64 firstPosition() const { return m_first; }
  // Document token at a cache position, -1 outside the document.
  int tokenAtPosition(qint64 position) const;
  // Document tokens [first, end) on screen now.
  QPair<int, int> visibleTokens() const;
  quint32 count(int token) const;

 public slots:
  // Scrolls tokens [first, end) of the document to the middle of the view and highlights them.
  void showPassage(int first, int end);
  void scrollToToken(int token);

 signals:
  void visibleTokensChanged();

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  int tokenAtChar(int pos) const;
  int charOfToken(int token) const;
  void shadeBlock(QPainter& p, const QTextBlock& block, const QPointF& origin);

  QVector<int> m_starts;
  qint64 m_first = -1;
  QVector<quint32> m_counts;
  qint64 m_nTokens = 0;
  int m_nInit = 0;
  int m_nLocal = 0;
  bool m_dense = false;
  double m_max = 1;
};
