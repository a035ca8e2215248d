// Settings: the system prompt and sampling, TokenSelect (k, sinks, local window, selection
// cache, dense attention, fp8 scoring keys), context size and threads.
#pragma once
#include <QDialog>

#include "engine_types.h"

class QCheckBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

class SettingsDialog : public QDialog {
  Q_OBJECT

 public:
  SettingsDialog(const SessionConfig& session, const GenerationConfig& generation, int trainedContext,
                 QWidget* parent = nullptr);

  SessionConfig session() const;
  GenerationConfig generation() const;

 private:
  void fill(const SessionConfig& s, const GenerationConfig& g);
  QWidget* generationPage();
  QWidget* tokenSelectPage(int trainedContext);
  QWidget* performancePage();

  QPlainTextEdit* m_system;
  QDoubleSpinBox* m_temperature;
  QDoubleSpinBox* m_topP;
  QSpinBox* m_topK;
  QDoubleSpinBox* m_minP;
  QDoubleSpinBox* m_repeat;
  QSpinBox* m_maxTokens;
  QSpinBox* m_seed;
  QCheckBox* m_dense;
  QSpinBox* m_k;
  QSpinBox* m_nInit;
  QSpinBox* m_nLocal;
  QCheckBox* m_cache;
  QDoubleSpinBox* m_threshold;
  QCheckBox* m_fp8Keys;
  QSpinBox* m_context;
  QSpinBox* m_threads;
};
