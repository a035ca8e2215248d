// The layer x position heatmap: one row per layer, the whole KV cache left to right in bins,
// colour = the vote score the layer gave the bin's tokens in one step. A strip on top sums the
// selection counts of the whole answer; bands below mark the documents, the sinks and the local
// window. Painted from one small QImage built through scanLine, scaled to the widget.
#pragma once
#include <QImage>
#include <QList>
#include <QVector>
#include <QWidget>

class HeatmapWidget : public QWidget {
  Q_OBJECT

 public:
  struct Span {
    qint64 first = 0;
    qint64 end = 0;
    QString label;
  };

  explicit HeatmapWidget(QWidget* parent = nullptr);

  // nLayer x nBins scores, row-major by layer; the bins span cache positions [0, nTokens).
  void setScores(const QVector<float>& scores, int nLayer, int nBins, qint64 nTokens);
  void setBinnedCounts(const QVector<quint64>& counts, qint64 nTokens);
  void setAttendedAlways(int nInit, int nLocal, bool dense);
  void setDocuments(const QList<Span>& documents);
  void clear();

  // How much of the picture is not background: tests use it to see that the map changed.
  double scoreSum() const { return m_scoreSum; }
  QSize sizeHint() const override { return {480, 220}; }
  QSize minimumSizeHint() const override { return {200, 120}; }

 signals:
  // Cache positions [first, end) of the bin that was clicked.
  void binClicked(qint64 first, qint64 end);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  bool event(QEvent* event) override;

 private:
  QRect plotRect() const;
  QRect countsRect() const;
  int binAtX(int x) const;
  qint64 positionOfBin(int bin, qint64 nTokens) const;
  int xOfPosition(qint64 position) const;

  QImage m_image;   // nBins x nLayer
  QImage m_counts;  // nBins x 1
  QVector<float> m_scores;
  int m_nLayer = 0;
  int m_nBins = 0;
  qint64 m_nTokens = 0;
  int m_nInit = 0;
  int m_nLocal = 0;
  bool m_dense = false;
  double m_scoreSum = 0;
  QList<Span> m_documents;
};
