#include "heatmap_widget.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "heat_palette.h"

namespace {
constexpr int kLeft = 30;    // layer labels
constexpr int kTop = 18;     // counts strip
constexpr int kBottom = 36;  // bands and axis labels
constexpr int kRight = 6;
}  // namespace

HeatmapWidget::HeatmapWidget(QWidget* parent) : QWidget(parent) {
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  setMouseTracking(true);
  setCursor(Qt::CrossCursor);
}

void HeatmapWidget::clear() {
  m_image = QImage();
  m_counts = QImage();
  m_scores.clear();
  m_scoreSum = 0;
  m_nTokens = 0;
  update();
}

void HeatmapWidget::setScores(const QVector<float>& scores, int nLayer, int nBins, qint64 nTokens) {
  if (nLayer <= 0 || nBins <= 0 || scores.size() != qsizetype(nLayer) * nBins) return;
  m_scores = scores;
  m_nLayer = nLayer;
  m_nBins = nBins;
  m_nTokens = nTokens;
  const float top = std::max(1e-9f, *std::max_element(scores.begin(), scores.end()));
  m_scoreSum = 0;
  m_image = QImage(nBins, nLayer, QImage::Format_RGB32);
  for (int l = 0; l < nLayer; ++l) {
    auto* row = reinterpret_cast<QRgb*>(m_image.scanLine(nLayer - 1 - l));  // layer 0 at the bottom
    const float* s = scores.constData() + qsizetype(l) * nBins;
    for (int b = 0; b < nBins; ++b) {
      m_scoreSum += s[b];
      row[b] = heat::rgb(std::sqrt(s[b] / top));
    }
  }
  update();
}

void HeatmapWidget::setBinnedCounts(const QVector<quint64>& counts, qint64 nTokens) {
  if (counts.isEmpty()) return;
  m_nTokens = std::max(m_nTokens, nTokens);
  const double top = std::max<double>(1, *std::max_element(counts.begin(), counts.end()));
  m_counts = QImage(int(counts.size()), 1, QImage::Format_RGB32);
  auto* row = reinterpret_cast<QRgb*>(m_counts.scanLine(0));
  for (int b = 0; b < counts.size(); ++b) row[b] = heat::rgb(std::sqrt(counts[b] / top));
  update();
}

void HeatmapWidget::setAttendedAlways(int nInit, int nLocal, bool dense) {
  m_nInit = nInit;
  m_nLocal = nLocal;
  m_dense = dense;
  update();
}

void HeatmapWidget::setDocuments(const QList<Span>& documents) {
  m_documents = documents;
  update();
}

QRect HeatmapWidget::plotRect() const {
  return QRect(kLeft, kTop, std::max(1, width() - kLeft - kRight), std::max(1, height() - kTop - kBottom));
}

QRect HeatmapWidget::countsRect() const { return QRect(kLeft, 3, plotRect().width(), kTop - 6); }

int HeatmapWidget::binAtX(int x) const {
  const QRect r = plotRect();
  return std::clamp(int(qint64(x - r.left()) * std::max(1, m_nBins) / r.width()), 0, std::max(0, m_nBins - 1));
}

// Matches the library's binning: position p falls in bin p * nBins / nTokens.
qint64 HeatmapWidget::positionOfBin(int bin, qint64 nTokens) const {
  return (qint64(bin) * nTokens + m_nBins - 1) / std::max(1, m_nBins);
}

int HeatmapWidget::xOfPosition(qint64 position) const {
  const QRect r = plotRect();
  return r.left() + int(position * r.width() / std::max<qint64>(1, m_nTokens));
}

void HeatmapWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().color(QPalette::Base));
  const QRect plot = plotRect();
  p.setPen(palette().color(QPalette::Text));
  QFont small = font();
  small.setPointSizeF(std::max(6.0, small.pointSizeF() * 0.8));
  p.setFont(small);
  if (m_image.isNull() || m_nTokens == 0) {
    p.fillRect(plot, QColor(20, 16, 40));
    p.setPen(Qt::white);
    p.drawText(plot, Qt::AlignCenter | Qt::TextWordWrap,
               m_dense ? tr("Dense attention: every layer attends every token, nothing is selected")
                       : tr("Ask a question about a document to see what each layer selects"));
    return;
  }
  p.drawImage(plot, m_image);
  if (!m_counts.isNull()) {
    p.drawImage(countsRect(), m_counts);
    p.drawText(QRect(0, 0, kLeft - 4, kTop), Qt::AlignRight | Qt::AlignVCenter, QStringLiteral("Σ"));
  }

  // Always-attended ranges, shaded over the map and named in the band below.
  const int bandY = plot.bottom() + 3;
  auto mark = [&](qint64 a, qint64 z, const QColor& c, const QString& label) {
    if (z <= a) return;
    const int x1 = xOfPosition(a);
    const int x2 = std::max(x1 + 2, xOfPosition(z));
    QColor fill = c;
    fill.setAlpha(60);
    p.fillRect(QRect(x1, plot.top(), x2 - x1, plot.height()), fill);
    p.fillRect(QRect(x1, bandY, x2 - x1, 5), c);
    p.setPen(c.darker(130));
    p.drawText(QRect(x1, bandY + 5, std::max(x2 - x1, 60), 12), Qt::AlignLeft | Qt::AlignTop, label);
  };
  QColor docColor(150, 150, 160);
  for (const Span& d : m_documents) {
    const int x1 = xOfPosition(d.first);
    const int x2 = std::max(x1 + 2, xOfPosition(d.end));
    p.fillRect(QRect(x1, bandY + 6, x2 - x1, 3), docColor);
    p.setPen(palette().color(QPalette::Text));
    p.drawText(QRect(x1, bandY + 9, x2 - x1, 14), Qt::AlignCenter,
               p.fontMetrics().elidedText(d.label, Qt::ElideRight, x2 - x1));
  }
  if (!m_dense) {
    mark(0, std::min<qint64>(m_nInit, m_nTokens), heat::kSink, tr("sinks"));
    mark(std::max<qint64>(0, m_nTokens - m_nLocal), m_nTokens, heat::kLocal, QString());
    p.setPen(heat::kLocal.darker(130));
    p.drawText(QRect(plot.left(), bandY + 5, plot.width(), 12), Qt::AlignRight | Qt::AlignTop, tr("local window"));
  }
  p.setPen(palette().color(QPalette::Text));
  p.drawText(QRect(plot.left(), bandY + 19, plot.width(), 14), Qt::AlignRight | Qt::AlignTop,
             tr("%L1 tokens").arg(m_nTokens));

  p.setPen(palette().color(QPalette::Text));
  p.drawText(QRect(0, plot.top(), kLeft - 4, 14), Qt::AlignRight | Qt::AlignTop, QString::number(m_nLayer - 1));
  p.drawText(QRect(0, plot.bottom() - 14, kLeft - 4, 14), Qt::AlignRight | Qt::AlignBottom, QStringLiteral("0"));
  p.save();
  p.translate(9, plot.center().y());
  p.rotate(-90);
  p.drawText(QRect(-30, -8, 60, 16), Qt::AlignCenter, tr("layer"));
  p.restore();
}

void HeatmapWidget::mousePressEvent(QMouseEvent* event) {
  if (m_nTokens == 0 || event->button() != Qt::LeftButton) return;
  const int bin = binAtX(int(event->position().x()));
  emit binClicked(positionOfBin(bin, m_nTokens), positionOfBin(bin + 1, m_nTokens));
}

bool HeatmapWidget::event(QEvent* e) {
  if (e->type() != QEvent::ToolTip || m_nTokens == 0) return QWidget::event(e);
  const QPoint pos = static_cast<QHelpEvent*>(e)->pos();
  const QRect plot = plotRect();
  const int bin = binAtX(pos.x());
  QString text = tr("tokens %L1–%L2").arg(positionOfBin(bin, m_nTokens)).arg(positionOfBin(bin + 1, m_nTokens));
  if (plot.contains(pos) && !m_scores.isEmpty()) {
    const int layer = std::clamp(m_nLayer - 1 - (pos.y() - plot.top()) * m_nLayer / plot.height(), 0, m_nLayer - 1);
    text += tr("\nlayer %1: vote %2").arg(layer).arg(double(m_scores[qsizetype(layer) * m_nBins + bin]), 0, 'g', 3);
  }
  QToolTip::showText(static_cast<QHelpEvent*>(e)->globalPos(), text + tr("\nclick: show this passage"), this);
  return true;
}
