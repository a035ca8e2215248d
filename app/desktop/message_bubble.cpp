#include "message_bubble.h"

#include <QAbstractTextDocumentLayout>
#include <QApplication>
#include <QClipboard>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QTextBrowser>
#include <QToolButton>
#include <QVBoxLayout>

MessageBubble::MessageBubble(Role role, QWidget* parent)
    : QFrame(parent), m_role(role), m_body(new QTextBrowser(this)), m_note(new QLabel(this)) {
  setObjectName(role == Role::User ? "userBubble" : "answerBubble");
  setFrameShape(QFrame::StyledPanel);
  setAutoFillBackground(true);
  QPalette pal = palette();
  pal.setColor(QPalette::Window, role == Role::User ? QColor(226, 236, 252) : QColor(250, 250, 250));
  setPalette(pal);

  auto* column = new QVBoxLayout(this);
  column->setContentsMargins(10, 6, 10, 6);
  column->setSpacing(2);
  auto* header = new QHBoxLayout;
  auto* who = new QLabel(role == Role::User ? tr("<b>You</b>") : tr("<b>Assistant</b>"), this);
  header->addWidget(who);
  header->addStretch();
  if (role == Role::Assistant) {
    m_copy = new QToolButton(this);
    m_copy->setText(tr("Copy"));
    m_copy->setObjectName("copyButton");
    m_copy->setAutoRaise(true);
    connect(m_copy, &QToolButton::clicked, this, [this] { QApplication::clipboard()->setText(m_raw); });
    m_regenerate = new QToolButton(this);
    m_regenerate->setText(tr("Regenerate"));
    m_regenerate->setObjectName("regenerateButton");
    m_regenerate->setAutoRaise(true);
    m_regenerate->hide();
    connect(m_regenerate, &QToolButton::clicked, this, &MessageBubble::regenerateRequested);
    header->addWidget(m_copy);
    header->addWidget(m_regenerate);
  }
  column->addLayout(header);

  m_body->setFrameShape(QFrame::NoFrame);
  m_body->setOpenExternalLinks(true);
  m_body->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  m_body->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  m_body->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
  m_body->viewport()->setAutoFillBackground(false);
  m_body->setStyleSheet("QTextBrowser { background: transparent; }");
  m_body->viewport()->installEventFilter(this);
  m_body->viewport()->setCursor(Qt::PointingHandCursor);
  if (role == Role::Assistant) m_body->setToolTip(tr("Click a word to see which tokens it attended to"));
  connect(m_body->document()->documentLayout(), &QAbstractTextDocumentLayout::documentSizeChanged, this,
          &MessageBubble::fitHeight);
  column->addWidget(m_body);

  m_note->setStyleSheet("color: gray;");
  m_note->hide();
  column->addWidget(m_note);
}

void MessageBubble::setMarkdown(const QString& markdown) {
  m_raw = markdown;
  if (m_role == Role::User)
    m_body->setPlainText(markdown);  // the user's own words, shown as typed
  else
    m_body->setMarkdown(markdown);
}

void MessageBubble::setNote(const QString& note) {
  m_note->setText(note);
  m_note->setVisible(!note.isEmpty());
}

void MessageBubble::setRegenerateVisible(bool visible) {
  if (m_regenerate) m_regenerate->setVisible(visible);
}

QString MessageBubble::renderedText() const { return m_body->toPlainText(); }

bool MessageBubble::eventFilter(QObject* watched, QEvent* event) {
  if (event->type() == QEvent::MouseButtonRelease && !m_body->textCursor().hasSelection()) {
    const auto* e = static_cast<QMouseEvent*>(event);
    emit textClicked(m_body->cursorForPosition(e->position().toPoint()).position());
  }
  return QFrame::eventFilter(watched, event);
}

void MessageBubble::fitHeight() {
  m_body->setFixedHeight(int(m_body->document()->size().height()) + 4);
}
