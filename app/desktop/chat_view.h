// The conversation: one bubble per message, answers rendered as Markdown while they stream, with
// Copy on every answer and Regenerate on the last one.
#pragma once
#include <QPointer>
#include <QScrollArea>
#include <QTimer>

class MessageBubble;
class QVBoxLayout;

class ChatView : public QScrollArea {
  Q_OBJECT

 public:
  explicit ChatView(QWidget* parent = nullptr);

  void addQuestion(const QString& text);
  void removeLastQuestion();
  void beginAnswer();
  void appendToAnswer(const QString& piece);
  // `note` goes under the answer: speed, why it ended.
  void finishAnswer(const QString& note);
  void dropLastAnswer();  // before it is regenerated
  void clear();
  void setRegenerateEnabled(bool enabled);

  QString lastAnswer() const;
  int messageCount() const;

 signals:
  void regenerateRequested();
  // A click on the newest answer's text: the index of the answer token under it.
  void answerTokenClicked(int index);

 private:
  void add(MessageBubble* bubble);
  void renderAnswer();
  void scrollToEnd();

  QWidget* m_content;
  QVBoxLayout* m_column;
  QPointer<MessageBubble> m_answer;  // the answer streaming now, or the last one
  QString m_raw;
  QVector<int> m_pieceEnds;  // per answer token, where its text ends in m_raw
  QTimer m_render;  // coalesces Markdown re-rendering while tokens stream
  bool m_regenerateEnabled = true;
};
