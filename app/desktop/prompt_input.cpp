#include "prompt_input.h"

#include <QKeyEvent>

PromptInput::PromptInput(QWidget* parent) : QPlainTextEdit(parent) {
  setPlaceholderText(tr("Ask about your documents… (Enter to send, Shift+Enter for a new line)"));
  setTabChangesFocus(true);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
}

QSize PromptInput::sizeHint() const { return {400, fontMetrics().lineSpacing() * 3 + 14}; }

void PromptInput::keyPressEvent(QKeyEvent* event) {
  const bool enter = event->key() == Qt::Key_Return || event->key() == Qt::Key_Enter;
  if (enter && !(event->modifiers() & Qt::ShiftModifier)) {
    emit submitted();
    return;
  }
  QPlainTextEdit::keyPressEvent(event);
}
