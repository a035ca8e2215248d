// Plain values that cross from the inference thread to the UI through queued signals. Qt's
// containers are implicitly shared, so a signal copies a pointer, not a 100k-token array.
#pragma once
#include <QMetaType>
#include <QString>
#include <QVector>

struct ModelInfo {
  QString path;
  QString name;
  QString arch;
  QString chatFormat;
  int nLayer = 0;
  int nCtxTrain = 0;
  quint64 nParams = 0;
  quint64 fileSize = 0;
  quint64 kvBytesPerToken = 0;
};

// TokenSelect settings (ts_select_settings); applied to a running session at once.
struct SelectConfig {
  bool dense = false;
  int k = 2048;
  int nInit = 128;
  int nLocal = 512;
  bool cache = true;
  double cacheThreshold = 0.9;
  bool fp8Keys = false;  // on a GPU the selection scores an fp8 copy of the keys (the CPU ignores it)
};

// What a session is created with; changing any of it rebuilds the session.
struct SessionConfig {
  qint64 nCtx = 0;  // 0: the library's default (64k with TokenSelect)
  int threads = 0;  // 0: all cores
  QString systemPrompt;
  SelectConfig select;
};

struct GenerationConfig {
  int maxTokens = 512;
  double temperature = 0.7;
  double topP = 0.95;
  int topK = 40;
  double minP = 0.05;
  double repeatPenalty = 1.1;
  quint64 seed = 42;
};

struct PrefillProgress {
  qint64 done = 0;
  qint64 total = 0;
  double tokensPerSecond = 0;
  double etaSeconds = -1;  // -1: not known yet
};

struct EngineStats {
  qint64 nTokens = 0;
  qint64 nCtx = 0;
  qint64 prefillTokens = 0;  // since the job started
  double prefillTokensPerSecond = 0;
  double decodeTokensPerSecond = 0;
  double firstTokenSeconds = 0;
  qint64 cacheHits = 0;
  qint64 cacheMisses = 0;
  qint64 selectingSteps = 0;
  qint64 denseSteps = 0;
  SelectConfig select;  // in effect, for marking sinks and the local window
};

// The attention's picture at one moment: per cached token how often it was selected during
// this answer, and the last step's vote scores per layer in bins over the whole cache.
struct SelectionFrame {
  qint64 nTokens = 0;
  QVector<quint32> counts;   // nTokens values
  QVector<quint64> binnedCounts;  // nBins values
  QVector<float> scores;     // nLayer * nBins, row-major by layer
  int nLayer = 0;
  int nBins = 0;
  EngineStats stats;
};

// One generated token and the vote scores of the step that produced it.
struct AnswerToken {
  int index = 0;  // in the answer
  QString piece;
  int token = -1;
  qint64 nTokens = 0;  // cache size at that step: the scores' bins span [0, nTokens)
  QVector<float> scores;
  int nLayer = 0;
  int nBins = 0;
};

// Where a document's tokens sit: cache position of the first, byte offset of each in its text.
struct DocumentLayout {
  int document = 0;
  qint64 firstPosition = 0;
  QVector<quint64> byteOffsets;
};

enum class AnswerEnd { Finished, MaxTokens, Stopped, ContextFull, Failed };

struct AnswerResult {
  AnswerEnd end = AnswerEnd::Finished;
  QString text;
  EngineStats stats;
};

Q_DECLARE_METATYPE(ModelInfo)
Q_DECLARE_METATYPE(SelectConfig)
Q_DECLARE_METATYPE(SessionConfig)
Q_DECLARE_METATYPE(GenerationConfig)
Q_DECLARE_METATYPE(PrefillProgress)
Q_DECLARE_METATYPE(EngineStats)
Q_DECLARE_METATYPE(SelectionFrame)
Q_DECLARE_METATYPE(AnswerToken)
Q_DECLARE_METATYPE(DocumentLayout)
Q_DECLARE_METATYPE(AnswerResult)
