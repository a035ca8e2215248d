// The question box: Enter sends, Shift+Enter starts a new line.
#pragma once
#include <QPlainTextEdit>

class PromptInput : public QPlainTextEdit {
  Q_OBJECT

 public:
  explicit PromptInput(QWidget* parent = nullptr);
  QSize sizeHint() const override;

 signals:
  void submitted();

 protected:
  void keyPressEvent(QKeyEvent* event) override;
};
