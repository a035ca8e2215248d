// Reads a document file into the text that goes into the context: .pdf through QtPdf, anything
// else as UTF-8 text (.txt, .md, source code). Safe to run off the UI thread.
#pragma once
#include <QString>

struct LoadedDocument {
  QString path;
  QString title;  // the file name
  QString text;   // null when the file could not be used
  QString error;  // why, in a few words
};

LoadedDocument loadDocument(const QString& path);

// File dialog filter of what loadDocument reads.
QString documentFileFilter();
