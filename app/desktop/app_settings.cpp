#include "app_settings.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QSettings>

namespace {

constexpr int kRecentMax = 10;
const char* const kDefaultModel = "SmolLM2-135M-Instruct.Q4_1.gguf";

// assets/ of an install (<prefix>/share/tokenselect) and of the source tree this was built from.
QStringList dataDirs() {
  return {QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("../" TS_DATA_SUBDIR)),
          QStringLiteral(TS_SOURCE_DIR "/assets")};
}

}  // namespace

AppSettings AppSettings::load() {
  QSettings s;
  AppSettings a;
  a.modelPath = s.value("model/path").toString();
  a.recentDocuments = s.value("documents/recent").toStringList();

  SessionConfig& c = a.session;
  c.nCtx = s.value("session/contextSize", c.nCtx).toLongLong();
  c.threads = s.value("session/threads", c.threads).toInt();
  c.systemPrompt = s.value("session/systemPrompt", c.systemPrompt).toString();
  SelectConfig& sel = c.select;
  sel.dense = s.value("tokenselect/dense", sel.dense).toBool();
  sel.k = s.value("tokenselect/k", sel.k).toInt();
  sel.nInit = s.value("tokenselect/nInit", sel.nInit).toInt();
  sel.nLocal = s.value("tokenselect/nLocal", sel.nLocal).toInt();
  sel.cache = s.value("tokenselect/cache", sel.cache).toBool();
  sel.cacheThreshold = s.value("tokenselect/cacheThreshold", sel.cacheThreshold).toDouble();
  sel.fp8Keys = s.value("tokenselect/fp8Keys", sel.fp8Keys).toBool();

  GenerationConfig& g = a.generation;
  g.maxTokens = s.value("generation/maxTokens", g.maxTokens).toInt();
  g.temperature = s.value("generation/temperature", g.temperature).toDouble();
  g.topP = s.value("generation/topP", g.topP).toDouble();
  g.topK = s.value("generation/topK", g.topK).toInt();
  g.minP = s.value("generation/minP", g.minP).toDouble();
  g.repeatPenalty = s.value("generation/repeatPenalty", g.repeatPenalty).toDouble();
  g.seed = s.value("generation/seed", g.seed).toULongLong();
  return a;
}

void AppSettings::save() const {
  QSettings s;
  s.setValue("model/path", modelPath);
  s.setValue("documents/recent", recentDocuments);
  s.setValue("session/contextSize", session.nCtx);
  s.setValue("session/threads", session.threads);
  s.setValue("session/systemPrompt", session.systemPrompt);
  const SelectConfig& sel = session.select;
  s.setValue("tokenselect/dense", sel.dense);
  s.setValue("tokenselect/k", sel.k);
  s.setValue("tokenselect/nInit", sel.nInit);
  s.setValue("tokenselect/nLocal", sel.nLocal);
  s.setValue("tokenselect/cache", sel.cache);
  s.setValue("tokenselect/cacheThreshold", sel.cacheThreshold);
  s.setValue("tokenselect/fp8Keys", sel.fp8Keys);
  s.setValue("generation/maxTokens", generation.maxTokens);
  s.setValue("generation/temperature", generation.temperature);
  s.setValue("generation/topP", generation.topP);
  s.setValue("generation/topK", generation.topK);
  s.setValue("generation/minP", generation.minP);
  s.setValue("generation/repeatPenalty", generation.repeatPenalty);
  s.setValue("generation/seed", generation.seed);
}

void AppSettings::addRecentDocument(const QString& path) {
  const QString abs = QFileInfo(path).absoluteFilePath();
  recentDocuments.removeAll(abs);
  recentDocuments.prepend(abs);
  while (recentDocuments.size() > kRecentMax) recentDocuments.removeLast();
}

QString defaultModelPath() {
  for (const QString& dir : dataDirs()) {
    const QFileInfo f(QDir(dir).filePath(QStringLiteral("models/") + kDefaultModel));
    if (f.isFile()) return f.canonicalFilePath();
  }
  return {};
}

QStringList exampleDocuments() {
  for (const QString& dir : dataDirs()) {
    const QDir docs(QDir(dir).filePath("docs"));
    const QStringList files = docs.entryList({"*.txt"}, QDir::Files, QDir::Name);
    if (!files.isEmpty()) {
      QStringList out;
      for (const QString& f : files) out << docs.absoluteFilePath(f);
      return out;
    }
  }
  return {};
}
