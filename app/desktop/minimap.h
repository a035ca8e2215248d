// A narrow strip beside the document: the whole document top to bottom, each pixel row coloured
// by the selection counts of its tokens, with a frame where the view is. Click to go there.
#pragma once
#include <QImage>
#include <QVector>
#include <QWidget>

class Minimap : public QWidget {
  Q_OBJECT

 public:
  explicit Minimap(QWidget* parent = nullptr);

  // Counts of every cached token; the document holds [first, first + nTokens).
  void setCounts(const QVector<quint32>& counts, qint64 first, int nTokens);
  void setViewRange(int firstToken, int endToken);
  QSize sizeHint() const override { return {22, 200}; }

 signals:
  void tokenClicked(int token);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;

 private:
  void render();
  int tokenAtY(int y) const;

  QVector<quint32> m_counts;
  qint64 m_first = 0;
  int m_nTokens = 0;
  int m_viewFirst = 0;
  int m_viewEnd = 0;
  QImage m_image;  // one pixel wide, one row per pixel of height
};
