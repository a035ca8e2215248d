#include "settings_dialog.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>
#include <QThread>
#include <QVBoxLayout>

namespace {

QDoubleSpinBox* realBox(double lo, double hi, double step, int decimals) {
  auto* b = new QDoubleSpinBox;
  b->setRange(lo, hi);
  b->setSingleStep(step);
  b->setDecimals(decimals);
  return b;
}

QSpinBox* intBox(int lo, int hi, int step) {
  auto* b = new QSpinBox;
  b->setRange(lo, hi);
  b->setSingleStep(step);
  b->setGroupSeparatorShown(true);
  return b;
}

QLabel* hint(const QString& text) {
  auto* l = new QLabel(text);
  l->setWordWrap(true);
  l->setStyleSheet("color: gray;");
  return l;
}

}  // namespace

SettingsDialog::SettingsDialog(const SessionConfig& session, const GenerationConfig& generation, int trainedContext,
                               QWidget* parent)
    : QDialog(parent) {
  setWindowTitle(tr("Settings"));
  auto* tabs = new QTabWidget(this);
  tabs->addTab(generationPage(), tr("Chat"));
  tabs->addTab(tokenSelectPage(trainedContext), tr("TokenSelect"));
  tabs->addTab(performancePage(), tr("Performance"));
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel | QDialogButtonBox::RestoreDefaults);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(buttons->button(QDialogButtonBox::RestoreDefaults), &QPushButton::clicked, this,
          [this] { fill(SessionConfig{}, GenerationConfig{}); });
  auto* column = new QVBoxLayout(this);
  column->addWidget(tabs);
  column->addWidget(buttons);
  fill(session, generation);
}

QWidget* SettingsDialog::generationPage() {
  auto* page = new QWidget;
  auto* form = new QFormLayout(page);
  m_system = new QPlainTextEdit;
  m_system->setPlaceholderText(tr("Empty: the model's own default system prompt"));
  m_system->setMaximumHeight(90);
  m_temperature = realBox(0, 2, 0.05, 2);
  m_topP = realBox(0.01, 1, 0.01, 2);
  m_topK = intBox(0, 1000, 5);
  m_minP = realBox(0, 1, 0.01, 2);
  m_repeat = realBox(1, 2, 0.05, 2);
  m_maxTokens = intBox(1, 32768, 64);
  m_seed = intBox(0, 2147483647, 1);
  form->addRow(tr("System prompt"), m_system);
  form->addRow(QString(), hint(tr("A new system prompt starts the session afresh; the conversation is kept and "
                                  "read again.")));
  form->addRow(tr("Temperature"), m_temperature);
  form->addRow(QString(), hint(tr("0 always picks the most likely token (repeatable answers).")));
  form->addRow(tr("Top-p"), m_topP);
  form->addRow(tr("Top-k (0: off)"), m_topK);
  form->addRow(tr("Min-p (0: off)"), m_minP);
  form->addRow(tr("Repeat penalty"), m_repeat);
  form->addRow(tr("Max answer tokens"), m_maxTokens);
  form->addRow(tr("Seed"), m_seed);
  return page;
}

QWidget* SettingsDialog::tokenSelectPage(int trainedContext) {
  auto* page = new QWidget;
  auto* form = new QFormLayout(page);
  m_dense = new QCheckBox(tr("Dense attention (every token, every step: the baseline)"));
  m_k = intBox(1, 1 << 20, 256);
  m_nInit = intBox(0, 1 << 16, 16);
  m_nLocal = intBox(1, 1 << 16, 64);
  m_cache = new QCheckBox(tr("Reuse a layer's selection while the query barely moves"));
  m_threshold = realBox(0, 1, 0.01, 2);
  m_fp8Keys = new QCheckBox(tr("Score an fp8 copy of the keys (GPU)"));
  form->addRow(m_dense);
  form->addRow(QString(), hint(tr("Dense attention past the model's trained context (%L1 tokens) makes answers "
                                  "degrade and decoding slow; use it to compare.")
                                   .arg(trainedContext)));
  form->addRow(tr("Selected tokens per layer (k)"), m_k);
  form->addRow(tr("Attention sinks (first tokens)"), m_nInit);
  form->addRow(tr("Local window (last tokens)"), m_nLocal);
  form->addRow(m_cache);
  form->addRow(tr("Reuse threshold (cosine)"), m_threshold);
  form->addRow(QString(), hint(tr("Each layer attends the sinks, its k most relevant tokens and the local window; "
                                  "selection starts once the context holds more than their sum. Changes apply "
                                  "from the next step.")));
  form->addRow(m_fp8Keys);
  form->addRow(QString(), hint(tr("On a GPU, selecting reads half the bytes: faster at long contexts, for 25% more "
                                  "KV memory and a slightly less exact choice. The CPU always scores its own keys.")));
  connect(m_dense, &QCheckBox::toggled, this, [this](bool dense) {
    for (QWidget* w : {static_cast<QWidget*>(m_k), static_cast<QWidget*>(m_nInit), static_cast<QWidget*>(m_nLocal),
                       static_cast<QWidget*>(m_cache), static_cast<QWidget*>(m_threshold),
                       static_cast<QWidget*>(m_fp8Keys)})
      w->setEnabled(!dense);
  });
  return page;
}

QWidget* SettingsDialog::performancePage() {
  auto* page = new QWidget;
  auto* form = new QFormLayout(page);
  m_context = intBox(0, 1 << 22, 4096);
  m_context->setSpecialValueText(tr("Automatic (64k with TokenSelect)"));
  m_threads = intBox(0, 256, 1);
  m_threads->setSpecialValueText(tr("All cores (%1)").arg(QThread::idealThreadCount()));
  form->addRow(tr("Context size (tokens)"), m_context);
  form->addRow(tr("CPU threads"), m_threads);
  form->addRow(QString(), hint(tr("Memory is used as the context fills. Changing these starts the session afresh; "
                                  "the conversation is kept and read again.")));
  return page;
}

void SettingsDialog::fill(const SessionConfig& s, const GenerationConfig& g) {
  m_system->setPlainText(s.systemPrompt);
  m_temperature->setValue(g.temperature);
  m_topP->setValue(g.topP);
  m_topK->setValue(g.topK);
  m_minP->setValue(g.minP);
  m_repeat->setValue(g.repeatPenalty);
  m_maxTokens->setValue(g.maxTokens);
  m_seed->setValue(int(g.seed));
  m_dense->setChecked(s.select.dense);
  m_k->setValue(s.select.k);
  m_nInit->setValue(s.select.nInit);
  m_nLocal->setValue(s.select.nLocal);
  m_cache->setChecked(s.select.cache);
  m_threshold->setValue(s.select.cacheThreshold);
  m_fp8Keys->setChecked(s.select.fp8Keys);
  m_context->setValue(int(s.nCtx));
  m_threads->setValue(s.threads);
}

SessionConfig SettingsDialog::session() const {
  SessionConfig s;
  s.systemPrompt = m_system->toPlainText().trimmed();
  s.select.dense = m_dense->isChecked();
  s.select.k = m_k->value();
  s.select.nInit = m_nInit->value();
  s.select.nLocal = m_nLocal->value();
  s.select.cache = m_cache->isChecked();
  s.select.cacheThreshold = m_threshold->value();
  s.select.fp8Keys = m_fp8Keys->isChecked();
  s.nCtx = m_context->value();
  s.threads = m_threads->value();
  return s;
}

GenerationConfig SettingsDialog::generation() const {
  GenerationConfig g;
  g.temperature = m_temperature->value();
  g.topP = m_topP->value();
  g.topK = m_topK->value();
  g.minP = m_minP->value();
  g.repeatPenalty = m_repeat->value();
  g.maxTokens = m_maxTokens->value();
  g.seed = quint64(m_seed->value());
  return g;
}
