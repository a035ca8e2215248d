// The right-hand side: what the attention did. The documents in the context, each shown whole
// and shaded by selection counts with a minimap; the layer x position heatmap for the newest (or
// a chosen) answer token; the selection cache's hit rate and how much of the context a step
// reads. Clicking a hot bin or the minimap brings up the passage it points at.
#pragma once
#include <QList>
#include <QWidget>

#include "engine_types.h"

class DocumentView;
class HeatmapWidget;
class Minimap;
class QCheckBox;
class QLabel;
class QSlider;
class QStackedWidget;
class QTabBar;

class InspectorPanel : public QWidget {
  Q_OBJECT

 public:
  explicit InspectorPanel(QWidget* parent = nullptr);

  void addDocument(const QString& title, const QString& text);
  void removeDocument(int index);
  void clearDocuments();
  void setDocumentLayout(const DocumentLayout& layout);
  void setSelection(const SelectionFrame& frame);
  void beginAnswer();
  void addAnswerToken(const AnswerToken& token);

  int documentCount() const { return int(m_docs.size()); }
  // Sum of the shown document's selection counts (tests watch it change).
  quint64 documentCountSum() const;
  HeatmapWidget* heatmap() const { return m_heatmap; }
  DocumentView* documentView() const { return m_view; }

 public slots:
  void showDocument(int index);
  // The passage of [first, end) cache positions with the most selections, in its document.
  void showPositions(qint64 first, qint64 end);
  void showHottestPassage();
  // Shows the heatmap of answer token `index` (stops following the newest).
  void selectAnswerToken(int index);

 signals:
  void removeDocumentRequested(int index);

 private:
  struct Doc {
    QString title;
    QString text;
    qint64 first = -1;  // -1 until read
    QVector<int> starts;
  };

  QWidget* buildDocumentPane();
  QWidget* buildHeatmapPane();
  void refreshHeatmap();
  void refreshStats();
  void refreshSpans();
  int documentAt(qint64 position) const;

  QList<Doc> m_docs;
  int m_current = -1;
  SelectionFrame m_frame;
  QList<AnswerToken> m_answer;

  QTabBar* m_tabs;
  QStackedWidget* m_docStack;  // a hint while there is no document
  DocumentView* m_view;
  Minimap* m_minimap;
  HeatmapWidget* m_heatmap;
  QLabel* m_heatmapTitle;
  QSlider* m_tokenSlider;
  QCheckBox* m_live;
  QLabel* m_stats;
};
