// The strip that shows a long job: what it is, a bar, tokens done of total, tokens/s, time
// left, and Cancel. Hidden while nothing runs.
#pragma once
#include <QWidget>

#include "engine_types.h"

class QLabel;
class QProgressBar;
class QPushButton;

class ProgressPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ProgressPanel(QWidget* parent = nullptr);

  void start(const QString& what);
  void setBytes(qint64 done, qint64 total);
  void setTokens(const PrefillProgress& progress);
  void finish();
  QString text() const;

 signals:
  void cancelRequested();

 private:
  QLabel* m_label;
  QProgressBar* m_bar;
  QPushButton* m_cancel;
  QString m_what;
};
