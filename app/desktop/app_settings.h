// Everything the app remembers between runs, read from and written to QSettings in one place.
#pragma once
#include <QStringList>

#include "engine_types.h"

struct AppSettings {
  QString modelPath;  // empty: the default model when it is present
  SessionConfig session;
  GenerationConfig generation;
  QStringList recentDocuments;  // newest first

  static AppSettings load();
  void save() const;
  void addRecentDocument(const QString& path);
};

// The default model (SmolLM2-135M-Instruct) in the install's data dir or the source tree, or ""
// when it is in neither.
QString defaultModelPath();
// The example documents that ship with TokenSelect (assets/docs).
QStringList exampleDocuments();
