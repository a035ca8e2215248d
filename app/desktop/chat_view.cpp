#include "chat_view.h"

#include <QScrollBar>
#include <algorithm>
#include <QVBoxLayout>

#include "message_bubble.h"

namespace {

constexpr int kRenderIntervalMs = 60;

// Where character `pos` of the rendered answer sits in its Markdown source. Rendering drops
// markup (**, #, list markers) but keeps the words in order, so walk both texts together and
// skip source characters until they match; whitespace matches whitespace.
int rawOffset(const QString& rendered, const QString& raw, int pos) {
  int j = 0;
  for (int i = 0; i < std::min(pos, int(rendered.size())) && j < raw.size(); ++i, ++j) {
    const QChar r = rendered[i];
    while (j < raw.size() && !(raw[j] == r || (raw[j].isSpace() && r.isSpace()))) ++j;
  }
  return std::min(j, int(raw.size()));
}

}  // namespace

ChatView::ChatView(QWidget* parent) : QScrollArea(parent), m_content(new QWidget), m_column(new QVBoxLayout(m_content)) {
  setWidgetResizable(true);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  m_column->addStretch();  // messages gather at the bottom, like every chat
  m_column->setSpacing(8);
  setWidget(m_content);
  m_render.setSingleShot(true);
  m_render.setInterval(kRenderIntervalMs);
  connect(&m_render, &QTimer::timeout, this, &ChatView::renderAnswer);
  // Follow the end while it grows, unless the user scrolled up to read.
  connect(verticalScrollBar(), &QScrollBar::rangeChanged, this, [this](int, int max) {
    if (m_answer && verticalScrollBar()->value() >= max - 80) scrollToEnd();
  });
}

void ChatView::add(MessageBubble* bubble) {
  m_column->addWidget(bubble);
  scrollToEnd();
}

void ChatView::scrollToEnd() { verticalScrollBar()->setValue(verticalScrollBar()->maximum()); }

void ChatView::addQuestion(const QString& text) {
  auto* b = new MessageBubble(MessageBubble::Role::User, m_content);
  b->setMarkdown(text);
  add(b);
}

void ChatView::removeLastQuestion() {
  for (int i = m_column->count() - 1; i > 0; --i) {
    auto* b = qobject_cast<MessageBubble*>(m_column->itemAt(i)->widget());
    if (b && b->role() == MessageBubble::Role::User) {
      delete b;
      return;
    }
  }
}

void ChatView::beginAnswer() {
  if (m_answer) {
    m_answer->setRegenerateVisible(false);
    disconnect(m_answer, &MessageBubble::textClicked, this, nullptr);  // only the newest answer has tokens
  }
  m_raw.clear();
  m_pieceEnds.clear();
  m_answer = new MessageBubble(MessageBubble::Role::Assistant, m_content);
  m_answer->setNote(tr("Thinking…"));
  connect(m_answer, &MessageBubble::regenerateRequested, this, &ChatView::regenerateRequested);
  connect(m_answer, &MessageBubble::textClicked, this, [this](int pos) {
    if (!m_answer || m_pieceEnds.isEmpty()) return;
    const int raw = rawOffset(m_answer->renderedText(), m_raw, pos);
    const auto it = std::upper_bound(m_pieceEnds.begin(), m_pieceEnds.end(), raw);
    emit answerTokenClicked(std::min(int(it - m_pieceEnds.begin()), int(m_pieceEnds.size()) - 1));
  });
  add(m_answer);
}

void ChatView::appendToAnswer(const QString& piece) {
  if (m_raw.isEmpty() && m_answer) m_answer->setNote({});
  m_raw += piece;
  m_pieceEnds.append(int(m_raw.size()));
  if (!m_render.isActive()) m_render.start();
}

void ChatView::renderAnswer() {
  if (m_answer) m_answer->setMarkdown(m_raw);
}

void ChatView::finishAnswer(const QString& note) {
  m_render.stop();
  renderAnswer();
  if (!m_answer) return;
  m_answer->setNote(note);
  m_answer->setRegenerateVisible(m_regenerateEnabled);
}

void ChatView::dropLastAnswer() {
  delete m_answer;
  m_raw.clear();
  m_pieceEnds.clear();
}

void ChatView::clear() {
  while (m_column->count() > 1) {
    QLayoutItem* item = m_column->takeAt(1);
    delete item->widget();
    delete item;
  }
  m_raw.clear();
}

void ChatView::setRegenerateEnabled(bool enabled) {
  m_regenerateEnabled = enabled;
  if (m_answer) m_answer->setRegenerateVisible(enabled);
}

QString ChatView::lastAnswer() const { return m_answer ? m_answer->raw() : QString(); }

int ChatView::messageCount() const { return m_column->count() - 1; }
