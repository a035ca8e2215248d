// Shared setup of the app's model tests: settings in a scratch directory (never the user's),
// small TokenSelect settings so selection is active on a few thousand tokens, and documents cut
// from the bundled Genesis text.
#pragma once
#include <QFile>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "engine_types.h"

namespace apptest {

// Must run before anything creates a QSettings.
inline void isolateSettings(const QTemporaryDir& dir) {
  QCoreApplication::setOrganizationName("TokenSelectTest");
  QCoreApplication::setApplicationName("tokenselect-chat-test");
  QSettings::setDefaultFormat(QSettings::IniFormat);
  QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, dir.path());
}

inline void writeSettings(const SelectConfig& select, int maxTokens) {
  QSettings s;
  s.clear();
  s.setValue("model/path", TS_DEFAULT_MODEL);
  s.setValue("session/threads", 2);
  s.setValue("tokenselect/k", select.k);
  s.setValue("tokenselect/nInit", select.nInit);
  s.setValue("tokenselect/nLocal", select.nLocal);
  s.setValue("generation/maxTokens", maxTokens);
  s.setValue("generation/temperature", 0.0);  // greedy: the same answer every run
}

// Bytes [from, to) of Genesis, cut at line ends, written to `dir`/name. About 3.6 bytes a token.
inline QString genesisPart(const QTemporaryDir& dir, const QString& name, qsizetype from, qsizetype to) {
  QFile in(TS_GENESIS);
  if (!in.open(QIODevice::ReadOnly)) return {};
  const QByteArray all = in.readAll();
  const qsizetype a = from == 0 ? 0 : all.indexOf('\n', from) + 1;
  const qsizetype z = all.indexOf('\n', std::min(to, all.size() - 1));
  const QString path = dir.filePath(name);
  QFile out(path);
  if (!out.open(QIODevice::WriteOnly)) return {};
  out.write(all.mid(a, (z < 0 ? all.size() : z + 1) - a));
  return path;
}

inline bool haveModel() { return QFile::exists(TS_DEFAULT_MODEL); }

}  // namespace apptest
