#include "document_view.h"

#include <QPainter>
#include <QScrollBar>
#include <QTextBlock>
#include <algorithm>

#include "heat_palette.h"

QVector<int> utf16Starts(const QString& text, const QVector<quint64>& byteOffsets) {
  QVector<int> starts(byteOffsets.size(), int(text.size()));
  qsizetype t = 0;
  quint64 byte = 0;
  for (int i = 0; i < text.size() && t < byteOffsets.size();) {
    const char32_t c = text[i].isHighSurrogate() && i + 1 < text.size() ? QChar::surrogateToUcs4(text[i], text[i + 1])
                                                                        : char32_t(text[i].unicode());
    const int units = c > 0xFFFF ? 2 : 1;
    const quint64 bytes = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    while (t < byteOffsets.size() && byteOffsets[t] < byte + bytes) starts[t++] = i;
    byte += bytes;
    i += units;
  }
  return starts;
}

DocumentView::DocumentView(QWidget* parent) : QPlainTextEdit(parent) {
  setReadOnly(true);
  setUndoRedoEnabled(false);
  setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
  setCenterOnScroll(false);
  connect(verticalScrollBar(), &QScrollBar::valueChanged, this, &DocumentView::visibleTokensChanged);
}

void DocumentView::showText(const QString& text) {
  m_starts.clear();
  m_first = -1;
  setExtraSelections({});
  setPlainText(text);
  emit visibleTokensChanged();
}

void DocumentView::setTokenLayout(qint64 firstPosition, const QVector<int>& tokenStarts) {
  m_first = firstPosition;
  m_starts = tokenStarts;
  viewport()->update();
  emit visibleTokensChanged();
}

void DocumentView::setSelection(const QVector<quint32>& counts, qint64 nTokens, int nInit, int nLocal, bool dense) {
  m_counts = counts;
  m_nTokens = nTokens;
  m_nInit = nInit;
  m_nLocal = nLocal;
  m_dense = dense;
  m_max = 1;
  for (int t = 0; t < m_starts.size(); ++t) m_max = std::max(m_max, double(count(t)));
  viewport()->update();
}

quint32 DocumentView::count(int token) const {
  const qint64 p = m_first + token;
  return m_first >= 0 && p < m_counts.size() ? m_counts[p] : 0;
}

int DocumentView::tokenAtPosition(qint64 position) const {
  const qint64 t = position - m_first;
  return m_first >= 0 && t >= 0 && t < m_starts.size() ? int(t) : -1;
}

int DocumentView::tokenAtChar(int pos) const {
  const auto it = std::upper_bound(m_starts.begin(), m_starts.end(), pos);
  return std::max(0, int(it - m_starts.begin()) - 1);
}

int DocumentView::charOfToken(int token) const {
  if (m_starts.isEmpty()) return 0;
  return token >= m_starts.size() ? int(document()->characterCount()) - 1 : m_starts[std::max(0, token)];
}

QPair<int, int> DocumentView::visibleTokens() const {
  if (m_starts.isEmpty()) return {0, 0};
  const int top = cursorForPosition(QPoint(0, 0)).position();
  const int bottom = cursorForPosition(QPoint(viewport()->width(), viewport()->height())).position();
  return {tokenAtChar(top), tokenAtChar(bottom) + 1};
}

void DocumentView::scrollToToken(int token) {
  QTextCursor c(document());
  c.setPosition(charOfToken(token));
  setTextCursor(c);
  centerCursor();
}

void DocumentView::showPassage(int first, int end) {
  if (m_starts.isEmpty()) return;
  QTextEdit::ExtraSelection passage;
  passage.cursor = QTextCursor(document());
  passage.cursor.setPosition(charOfToken(first));
  passage.cursor.setPosition(charOfToken(end), QTextCursor::KeepAnchor);
  QColor bg = heat::kPassage;
  bg.setAlpha(150);
  passage.format.setBackground(bg);
  passage.format.setUnderlineStyle(QTextCharFormat::SingleUnderline);
  passage.format.setUnderlineColor(Qt::black);
  setExtraSelections({passage});
  scrollToToken((first + end) / 2);
}

void DocumentView::paintEvent(QPaintEvent* event) {
  if (!m_starts.isEmpty()) {
    QPainter p(viewport());
    const QPointF offset = contentOffset();
    for (QTextBlock b = firstVisibleBlock(); b.isValid(); b = b.next()) {
      const QRectF r = blockBoundingGeometry(b).translated(offset);
      if (r.top() > viewport()->height()) break;
      shadeBlock(p, b, r.topLeft());
    }
  }
  QPlainTextEdit::paintEvent(event);  // the text over the shading
}

// Fills each token's character range in one block, line by line, with its colour.
void DocumentView::shadeBlock(QPainter& p, const QTextBlock& block, const QPointF& origin) {
  const QTextLayout* layout = block.layout();
  const int begin = block.position();
  const int end = begin + block.length();
  for (int t = tokenAtChar(begin); t < m_starts.size() && m_starts[t] < end; ++t) {
    const qint64 pos = m_first + t;
    QColor color;
    if (pos < m_nInit)
      color = heat::kSink;
    else if (pos >= m_nTokens - m_nLocal)
      color = heat::kLocal;
    else if (const quint32 c = count(t); c > 0 && !m_dense)
      color = heat::wash(c / m_max);
    else
      continue;
    if (pos < m_nInit || pos >= m_nTokens - m_nLocal) color.setAlpha(heat::kAlwaysAlpha);
    const int from = std::max(m_starts[t], begin) - begin;
    const int to = std::min(t + 1 < m_starts.size() ? m_starts[t + 1] : end, end) - begin;
    for (int i = 0; i < layout->lineCount(); ++i) {
      const QTextLine line = layout->lineAt(i);
      const int a = std::max(from, line.textStart());
      const int z = std::min(to, line.textStart() + line.textLength());
      if (a >= z) continue;
      const qreal x1 = line.cursorToX(a);
      const qreal x2 = line.cursorToX(z);
      p.fillRect(QRectF(origin.x() + x1, origin.y() + line.y(), x2 - x1, line.height()), color);
    }
  }
}
