#include "progress_panel.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>

namespace {
QString duration(double seconds) {
  const int s = int(seconds + 0.5);
  return s >= 60 ? QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QChar('0')) : QStringLiteral("%1 s").arg(s);
}
}  // namespace

ProgressPanel::ProgressPanel(QWidget* parent)
    : QWidget(parent), m_label(new QLabel(this)), m_bar(new QProgressBar(this)), m_cancel(new QPushButton(tr("Cancel"), this)) {
  auto* row = new QHBoxLayout(this);
  row->setContentsMargins(0, 0, 0, 0);
  m_label->setMinimumWidth(200);
  m_bar->setTextVisible(false);
  m_bar->setMaximumHeight(12);
  m_cancel->setObjectName("cancelButton");
  row->addWidget(m_label, 2);
  row->addWidget(m_bar, 1);
  row->addWidget(m_cancel);
  connect(m_cancel, &QPushButton::clicked, this, &ProgressPanel::cancelRequested);
  hide();
}

void ProgressPanel::start(const QString& what) {
  m_what = what;
  m_label->setText(what);
  m_bar->setRange(0, 0);  // busy until the first numbers arrive
  show();
}

void ProgressPanel::setBytes(qint64 done, qint64 total) {
  m_bar->setRange(0, 1000);
  m_bar->setValue(total > 0 ? int(done * 1000 / total) : 0);
  m_label->setText(tr("%1: %2 of %3 MB").arg(m_what).arg(done >> 20).arg(total >> 20));
}

void ProgressPanel::setTokens(const PrefillProgress& p) {
  m_bar->setRange(0, 1000);
  m_bar->setValue(p.total > 0 ? int(p.done * 1000 / p.total) : 0);
  QString text = tr("%1: %L2 / %L3 tokens").arg(m_what).arg(p.done).arg(p.total);
  if (p.tokensPerSecond > 0) text += tr(" · %1 tok/s").arg(p.tokensPerSecond, 0, 'f', 0);
  if (p.etaSeconds >= 0 && p.done < p.total) text += tr(" · %1 left").arg(duration(p.etaSeconds));
  m_label->setText(text);
}

void ProgressPanel::finish() { hide(); }

QString ProgressPanel::text() const { return m_label->text(); }
