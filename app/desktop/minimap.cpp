#include "minimap.h"

#include <QMouseEvent>
#include <QPainter>
#include <algorithm>
#include <cmath>

#include "heat_palette.h"

Minimap::Minimap(QWidget* parent) : QWidget(parent) {
  setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Expanding);
  setCursor(Qt::PointingHandCursor);
  setToolTip(tr("Where in the document the attention went: brighter rows were selected more often. Click to go there."));
}

void Minimap::setCounts(const QVector<quint32>& counts, qint64 first, int nTokens) {
  m_counts = counts;
  m_first = first;
  m_nTokens = nTokens;
  render();
  update();
}

void Minimap::setViewRange(int firstToken, int endToken) {
  m_viewFirst = firstToken;
  m_viewEnd = endToken;
  update();
}

void Minimap::resizeEvent(QResizeEvent*) { render(); }

// Sums the tokens of each pixel row, then colours the rows through scanLine.
void Minimap::render() {
  const int h = std::max(1, height());
  m_image = QImage(1, h, QImage::Format_RGB32);
  QVector<double> rows(h, 0.0);
  if (m_nTokens > 0) {
    for (int t = 0; t < m_nTokens; ++t) {
      const qint64 p = m_first + t;
      if (p >= m_counts.size()) break;
      rows[int(qint64(t) * h / m_nTokens)] += m_counts[p];
    }
  }
  const double top = std::max(1.0, *std::max_element(rows.begin(), rows.end()));
  for (int y = 0; y < h; ++y)
    reinterpret_cast<QRgb*>(m_image.scanLine(y))[0] = rows[y] > 0 ? heat::rgb(0.15 + 0.85 * std::pow(rows[y] / top, 1.5))
                                                                    : qRgb(235, 235, 240);
}

void Minimap::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.drawImage(rect(), m_image);
  if (m_nTokens > 0 && m_viewEnd > m_viewFirst) {
    const int y1 = int(qint64(m_viewFirst) * height() / m_nTokens);
    const int y2 = std::max(y1 + 3, int(qint64(m_viewEnd) * height() / m_nTokens));
    p.setPen(QPen(palette().color(QPalette::Highlight), 2));
    p.drawRect(QRect(1, y1, width() - 2, y2 - y1));
  }
}

int Minimap::tokenAtY(int y) const { return int(std::clamp<qint64>(qint64(y) * m_nTokens / std::max(1, height()), 0, m_nTokens - 1)); }

void Minimap::mousePressEvent(QMouseEvent* event) {
  if (m_nTokens > 0) emit tokenClicked(tokenAtY(int(event->position().y())));
}

void Minimap::mouseMoveEvent(QMouseEvent* event) {
  if (event->buttons() & Qt::LeftButton && m_nTokens > 0) emit tokenClicked(tokenAtY(int(event->position().y())));
}
