// How full the context is: tokens used of the session's maximum, with a tick at the model's
// trained context; green, then amber past 75 %, red past 90 %.
#pragma once
#include <QWidget>

class ContextMeter : public QWidget {
  Q_OBJECT

 public:
  explicit ContextMeter(QWidget* parent = nullptr);
  void setUsage(qint64 used, qint64 trained, qint64 maximum);
  qint64 used() const { return m_used; }
  QSize sizeHint() const override { return {260, 20}; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  qint64 m_used = 0;
  qint64 m_trained = 0;
  qint64 m_max = 0;
};
