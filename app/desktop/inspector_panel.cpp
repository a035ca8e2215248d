#include "inspector_panel.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QSplitter>
#include <QStackedWidget>
#include <QTabBar>
#include <QVBoxLayout>
#include <algorithm>

#include "document_view.h"
#include "heat_palette.h"
#include "heatmap_widget.h"
#include "minimap.h"

namespace {

// A passage shown for a click: at least this many tokens around the hottest one.
constexpr int kPassageTokens = 48;

// A legend entry; translucent colours are shown as they look over the white page.
QString swatch(const QColor& c, const QString& label) {
  const double a = c.alphaF();
  const QColor flat = QColor::fromRgbF(1 - a + a * c.redF(), 1 - a + a * c.greenF(), 1 - a + a * c.blueF());
  return QStringLiteral("<span style='background:%1'>&nbsp;&nbsp;&nbsp;</span>&nbsp;%2").arg(flat.name(), label);
}

}  // namespace

InspectorPanel::InspectorPanel(QWidget* parent) : QWidget(parent) {
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(buildDocumentPane());
  split->addWidget(buildHeatmapPane());
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* column = new QVBoxLayout(this);
  column->setContentsMargins(0, 0, 0, 0);
  column->addWidget(split);
}

QWidget* InspectorPanel::buildDocumentPane() {
  auto* pane = new QWidget;
  auto* column = new QVBoxLayout(pane);
  column->setContentsMargins(0, 0, 0, 0);
  column->setSpacing(2);

  auto* top = new QHBoxLayout;
  m_tabs = new QTabBar;
  m_tabs->setTabsClosable(true);
  m_tabs->setExpanding(false);
  m_tabs->setElideMode(Qt::ElideMiddle);
  connect(m_tabs, &QTabBar::currentChanged, this, &InspectorPanel::showDocument);
  connect(m_tabs, &QTabBar::tabCloseRequested, this, &InspectorPanel::removeDocumentRequested);
  auto* hottest = new QPushButton(tr("Hottest passage"));
  hottest->setObjectName("hottestButton");
  hottest->setToolTip(tr("Show the passage the attention selected most often for this answer"));
  connect(hottest, &QPushButton::clicked, this, &InspectorPanel::showHottestPassage);
  top->addWidget(m_tabs, 1);
  top->addWidget(hottest);
  column->addLayout(top);

  QColor sink = heat::kSink, local = heat::kLocal;
  sink.setAlpha(heat::kAlwaysAlpha);
  local.setAlpha(heat::kAlwaysAlpha);
  auto* legend = new QLabel(swatch(heat::wash(0.4), tr("selected")) + "&nbsp;→&nbsp;" + swatch(heat::wash(1.0), tr("selected most")) +
                            "&nbsp;&nbsp;&nbsp;" + swatch(sink, tr("sinks")) + "&nbsp;&nbsp;&nbsp;" +
                            swatch(local, tr("local window")) + "&nbsp;&nbsp;&nbsp;" +
                            swatch(heat::kPassage, tr("shown passage")));
  legend->setTextFormat(Qt::RichText);
  column->addWidget(legend);

  m_docStack = new QStackedWidget;
  auto* empty = new QLabel(tr("Drop a .txt, .md or .pdf file here, or use Document ▸ Add.\n\n"
                              "The whole document goes into the context; as the model answers, the text "
                              "lights up where its attention selected tokens."));
  empty->setAlignment(Qt::AlignCenter);
  empty->setWordWrap(true);
  empty->setStyleSheet("color: gray;");
  m_docStack->addWidget(empty);
  auto* docRow = new QWidget;
  auto* row = new QHBoxLayout(docRow);
  row->setContentsMargins(0, 0, 0, 0);
  row->setSpacing(2);
  m_view = new DocumentView;
  m_view->setObjectName("documentView");
  m_minimap = new Minimap;
  row->addWidget(m_view, 1);
  row->addWidget(m_minimap);
  m_docStack->addWidget(docRow);
  column->addWidget(m_docStack, 1);

  connect(m_minimap, &Minimap::tokenClicked, m_view, &DocumentView::scrollToToken);
  connect(m_view, &DocumentView::visibleTokensChanged, this, [this] {
    const auto [a, z] = m_view->visibleTokens();
    m_minimap->setViewRange(a, z);
  });
  return pane;
}

QWidget* InspectorPanel::buildHeatmapPane() {
  auto* pane = new QWidget;
  auto* column = new QVBoxLayout(pane);
  column->setContentsMargins(0, 4, 0, 0);
  column->setSpacing(2);
  m_heatmapTitle = new QLabel;
  m_heatmapTitle->setTextFormat(Qt::RichText);
  column->addWidget(m_heatmapTitle);
  m_heatmap = new HeatmapWidget;
  m_heatmap->setObjectName("heatmap");
  m_heatmap->setToolTip(tr("Rows: layers. Columns: the whole context. Brighter: more vote for those tokens."));
  column->addWidget(m_heatmap, 1);
  connect(m_heatmap, &HeatmapWidget::binClicked, this, &InspectorPanel::showPositions);

  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel(tr("Answer token")));
  m_tokenSlider = new QSlider(Qt::Horizontal);
  m_tokenSlider->setRange(0, 0);
  m_tokenSlider->setEnabled(false);
  m_live = new QCheckBox(tr("Live"));
  m_live->setChecked(true);
  m_live->setToolTip(tr("Follow the newest token while the answer streams"));
  row->addWidget(m_tokenSlider, 1);
  row->addWidget(m_live);
  column->addLayout(row);
  connect(m_tokenSlider, &QSlider::valueChanged, this, [this](int v) {
    if (v != m_answer.size() - 1) m_live->setChecked(false);
    refreshHeatmap();
  });
  connect(m_live, &QCheckBox::toggled, this, [this](bool live) {
    if (live && !m_answer.isEmpty()) m_tokenSlider->setValue(int(m_answer.size()) - 1);
    refreshHeatmap();
  });

  m_stats = new QLabel;
  m_stats->setObjectName("selectionStats");
  m_stats->setWordWrap(true);
  column->addWidget(m_stats);
  refreshHeatmap();
  return pane;
}

void InspectorPanel::addDocument(const QString& title, const QString& text) {
  m_docs.append({title, text, -1, {}});
  m_tabs->addTab(title + tr(" (reading…)"));
  m_tabs->setCurrentIndex(m_tabs->count() - 1);
  m_docStack->setCurrentIndex(1);
}

void InspectorPanel::removeDocument(int index) {
  if (index < 0 || index >= m_docs.size()) return;
  m_docs.removeAt(index);
  if (m_current == index) m_current = -1;
  else if (m_current > index) --m_current;
  m_tabs->removeTab(index);  // selects another tab, which shows it
  if (m_docs.isEmpty()) m_docStack->setCurrentIndex(0);
  refreshSpans();
}

void InspectorPanel::clearDocuments() {
  m_docs.clear();
  m_current = -1;
  while (m_tabs->count() > 0) m_tabs->removeTab(0);
  m_docStack->setCurrentIndex(0);
  m_answer.clear();
  m_frame = SelectionFrame{};
  m_heatmap->clear();
  refreshHeatmap();
  refreshSpans();
}

void InspectorPanel::showDocument(int index) {
  if (index < 0 || index >= m_docs.size() || index == m_current) return;
  m_current = index;
  const Doc& d = m_docs[index];
  m_view->showText(d.text);
  if (d.first >= 0) m_view->setTokenLayout(d.first, d.starts);
  const SelectConfig& s = m_frame.stats.select;
  m_view->setSelection(m_frame.counts, m_frame.nTokens, s.nInit, s.nLocal, s.dense);
  m_minimap->setCounts(m_frame.counts, d.first, d.first >= 0 ? int(d.starts.size()) : 0);
}

void InspectorPanel::setDocumentLayout(const DocumentLayout& layout) {
  if (layout.document < 0 || layout.document >= m_docs.size()) return;
  Doc& d = m_docs[layout.document];
  if (d.first == layout.firstPosition && d.starts.size() == layout.byteOffsets.size()) return;
  d.first = layout.firstPosition;
  d.starts = utf16Starts(d.text, layout.byteOffsets);
  m_tabs->setTabText(layout.document, tr("%1 (%L2 tokens)").arg(d.title).arg(d.starts.size()));
  if (layout.document == m_current) {
    m_view->setTokenLayout(d.first, d.starts);
    m_minimap->setCounts(m_frame.counts, d.first, int(d.starts.size()));
  }
  refreshSpans();
}

void InspectorPanel::setSelection(const SelectionFrame& frame) {
  m_frame = frame;
  const SelectConfig& s = frame.stats.select;
  m_view->setSelection(frame.counts, frame.nTokens, s.nInit, s.nLocal, s.dense);
  if (m_current >= 0 && m_docs[m_current].first >= 0)
    m_minimap->setCounts(frame.counts, m_docs[m_current].first, int(m_docs[m_current].starts.size()));
  m_heatmap->setBinnedCounts(frame.binnedCounts, frame.nTokens);
  m_heatmap->setAttendedAlways(s.nInit, s.nLocal, s.dense);
  if (m_answer.isEmpty()) refreshHeatmap();  // while reading: the newest prefill chunk's votes
  refreshStats();
}

void InspectorPanel::beginAnswer() {
  m_answer.clear();
  m_tokenSlider->setRange(0, 0);
  m_tokenSlider->setEnabled(false);
  m_live->setChecked(true);
}

void InspectorPanel::addAnswerToken(const AnswerToken& token) {
  m_answer.append(token);
  const QSignalBlocker block(m_tokenSlider);
  m_tokenSlider->setEnabled(true);
  m_tokenSlider->setRange(0, int(m_answer.size()) - 1);
  if (m_live->isChecked()) {
    m_tokenSlider->setValue(int(m_answer.size()) - 1);
    refreshHeatmap();
  }
}

void InspectorPanel::refreshHeatmap() {
  const bool dense = m_frame.stats.select.dense;
  if (!m_answer.isEmpty()) {
    const int i = std::clamp(m_tokenSlider->value(), 0, int(m_answer.size()) - 1);
    const AnswerToken& t = m_answer[i];
    m_heatmap->setScores(t.scores, t.nLayer, t.nBins, t.nTokens);
    QString piece = t.piece.toHtmlEscaped();
    piece.replace('\n', QStringLiteral("⏎"));
    m_heatmapTitle->setText(tr("<b>Layer × position</b> — votes for answer token %1 of %2: "
                               "<span style='background:#ffe9a8'>&nbsp;%3&nbsp;</span>%4")
                                .arg(i + 1)
                                .arg(m_answer.size())
                                .arg(piece)
                                .arg(m_live->isChecked() ? tr(" (live)") : QString()));
  } else if (!m_frame.scores.isEmpty()) {
    m_heatmap->setScores(m_frame.scores, m_frame.nLayer, m_frame.nBins, m_frame.nTokens);
    m_heatmapTitle->setText(tr("<b>Layer × position</b> — votes of the newest prompt chunk"));
  } else {
    m_heatmapTitle->setText(tr("<b>Layer × position</b>"));
  }
  m_heatmap->setAttendedAlways(m_frame.stats.select.nInit, m_frame.stats.select.nLocal, dense);
}

void InspectorPanel::refreshStats() {
  const EngineStats& s = m_frame.stats;
  if (s.select.dense) {
    m_stats->setText(tr("Dense attention: every step reads all %L1 tokens.").arg(s.nTokens));
    return;
  }
  const qint64 budget = qint64(s.select.nInit) + s.select.k + s.select.nLocal;
  const qint64 attended = std::min(budget, s.nTokens);
  QString text = tr("Each layer-step reads <b>%L1</b> of %L2 tokens (%3%)")
                     .arg(attended)
                     .arg(s.nTokens)
                     .arg(s.nTokens > 0 ? 100.0 * attended / s.nTokens : 100.0, 0, 'f', 1);
  const qint64 lookups = s.cacheHits + s.cacheMisses;
  if (lookups > 0)
    text += tr(" · selection-cache hit rate <b>%1%</b> (%L2 of %L3 selections reused)")
                .arg(100.0 * s.cacheHits / lookups, 0, 'f', 0)
                .arg(s.cacheHits)
                .arg(lookups);
  else if (s.nTokens > 0 && s.nTokens <= budget)
    text += tr(" · below the budget of %L1, so nothing is selected yet").arg(budget);
  m_stats->setText(text);
}

void InspectorPanel::refreshSpans() {
  QList<HeatmapWidget::Span> spans;
  for (const Doc& d : m_docs)
    if (d.first >= 0) spans.append({d.first, d.first + d.starts.size(), d.title});
  m_heatmap->setDocuments(spans);
}

int InspectorPanel::documentAt(qint64 position) const {
  for (int i = 0; i < m_docs.size(); ++i)
    if (m_docs[i].first >= 0 && position >= m_docs[i].first && position < m_docs[i].first + m_docs[i].starts.size())
      return i;
  return -1;
}

void InspectorPanel::showPositions(qint64 first, qint64 end) {
  int doc = -1;
  for (qint64 p = first; p < end && doc < 0; ++p) doc = documentAt(p);
  if (doc < 0) return;  // the template, the question or the answer: not in a document
  m_tabs->setCurrentIndex(doc);
  const Doc& d = m_docs[doc];
  const int n = int(d.starts.size());
  const int a = int(std::clamp<qint64>(first - d.first, 0, n - 1));
  const int z = int(std::clamp<qint64>(end - d.first, a + 1, n));
  int hot = a;
  for (int t = a; t < z; ++t)
    if (m_view->count(t) > m_view->count(hot)) hot = t;
  if (z - a >= kPassageTokens)
    m_view->showPassage(a, z);
  else
    m_view->showPassage(std::max(0, hot - kPassageTokens / 2), std::min(n, hot + kPassageTokens / 2));
}

// Slides a window over every read document and shows the one with the most selections.
void InspectorPanel::showHottestPassage() {
  quint64 best = 0;
  qint64 bestFirst = -1;
  for (const Doc& d : m_docs) {
    if (d.first < 0) continue;
    quint64 sum = 0;
    for (qint64 t = 0; t < d.starts.size(); ++t) {
      const qint64 p = d.first + t;
      sum += p < m_frame.counts.size() ? m_frame.counts[p] : 0;
      const qint64 out = p - kPassageTokens;
      if (t >= kPassageTokens && out < m_frame.counts.size()) sum -= m_frame.counts[out];
      if (sum > best) {
        best = sum;
        bestFirst = std::max(d.first, p - kPassageTokens + 1);
      }
    }
  }
  if (bestFirst >= 0) showPositions(bestFirst, bestFirst + kPassageTokens);
}

void InspectorPanel::selectAnswerToken(int index) {
  if (index < 0 || index >= m_answer.size()) return;
  m_live->setChecked(false);
  m_tokenSlider->setValue(index);
  refreshHeatmap();
}

quint64 InspectorPanel::documentCountSum() const {
  quint64 sum = 0;
  for (int t = 0; t < m_view->tokenCount(); ++t) sum += m_view->count(t);
  return sum;
}
