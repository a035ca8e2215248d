#include "context_meter.h"

#include <QPainter>
#include <algorithm>

ContextMeter::ContextMeter(QWidget* parent) : QWidget(parent) {
  setMinimumWidth(180);
  setUsage(0, 0, 0);
}

void ContextMeter::setUsage(qint64 used, qint64 trained, qint64 maximum) {
  m_used = used;
  m_trained = trained;
  m_max = maximum;
  setToolTip(tr("Context: %L1 of %L2 tokens used. The model was trained on %L3 tokens; TokenSelect lets it read "
                "further by attending only to the tokens that matter.")
                 .arg(used)
                 .arg(maximum)
                 .arg(trained));
  update();
}

void ContextMeter::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QRectF bar = QRectF(rect()).adjusted(1, 2, -1, -2);
  p.setPen(palette().color(QPalette::Mid));
  p.setBrush(palette().color(QPalette::Base));
  p.drawRoundedRect(bar, 4, 4);
  const double fill = m_max > 0 ? std::clamp(double(m_used) / m_max, 0.0, 1.0) : 0.0;
  if (fill > 0) {
    const QColor c = fill > 0.9 ? QColor(215, 60, 50) : fill > 0.75 ? QColor(235, 160, 30) : QColor(70, 170, 90);
    p.setPen(Qt::NoPen);
    p.setBrush(c);
    p.drawRoundedRect(QRectF(bar.left(), bar.top(), std::max(4.0, bar.width() * fill), bar.height()), 4, 4);
  }
  if (m_max > 0 && m_trained > 0 && m_trained < m_max) {
    const double x = bar.left() + bar.width() * double(m_trained) / m_max;
    p.setPen(QPen(palette().color(QPalette::Text), 1, Qt::DashLine));
    p.drawLine(QPointF(x, bar.top()), QPointF(x, bar.bottom()));
  }
  p.setPen(palette().color(QPalette::Text));
  p.drawText(bar, Qt::AlignCenter,
             m_max > 0 ? tr("%L1 / %L2 tokens (trained %L3)").arg(m_used).arg(m_max).arg(m_trained) : tr("no model"));
}
