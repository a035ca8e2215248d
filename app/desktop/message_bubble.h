// One message of the chat: who said it, the text (Markdown for answers), a note, and for answers
// Copy and Regenerate buttons. Grows to fit its text; the chat scrolls, not the bubble.
#pragma once
#include <QFrame>

class QLabel;
class QTextBrowser;
class QToolButton;

class MessageBubble : public QFrame {
  Q_OBJECT

 public:
  enum class Role { User, Assistant };
  MessageBubble(Role role, QWidget* parent = nullptr);

  Role role() const { return m_role; }
  void setMarkdown(const QString& markdown);
  void setNote(const QString& note);
  void setRegenerateVisible(bool visible);
  QString raw() const { return m_raw; }
  QString renderedText() const;

 signals:
  void regenerateRequested();
  // A click (not a drag-select) on the text: the character position in the rendered text.
  void textClicked(int position);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void fitHeight();

  Role m_role;
  QString m_raw;
  QTextBrowser* m_body;
  QLabel* m_note;
  QToolButton* m_copy = nullptr;
  QToolButton* m_regenerate = nullptr;
};
