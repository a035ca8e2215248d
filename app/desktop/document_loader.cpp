#include "document_loader.h"

#include <QCoreApplication>
#include <QFile>
#include <QFileInfo>
#include <QStringDecoder>

#include "pdf_text.h"

namespace {

QString tr(const char* s) { return QCoreApplication::translate("DocumentLoader", s); }

// The library wants UTF-8 without NUL bytes; a binary file or a legacy encoding is an error
// here rather than a page of replacement characters in the context.
QString plainText(const QString& path, QString* error) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) {
    *error = f.errorString();
    return {};
  }
  const QByteArray bytes = f.readAll();
  if (bytes.contains('\0')) {
    *error = tr("a binary file, not text");
    return {};
  }
  QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);  // a cut-off last character is an error too
  QString text = utf8(bytes);
  if (utf8.hasError()) {
    *error = tr("not UTF-8 text");
    return {};
  }
  return text;
}

}  // namespace

LoadedDocument loadDocument(const QString& path) {
  LoadedDocument d;
  d.path = path;
  d.title = QFileInfo(path).fileName();
  QString text = QFileInfo(path).suffix().compare("pdf", Qt::CaseInsensitive) == 0 ? pdfText(path, &d.error)
                                                                                    : plainText(path, &d.error);
  if (text.isNull()) return d;
  // One newline convention, so the text shown and the text in the context are the same.
  text.replace(QStringLiteral("\r\n"), QStringLiteral("\n"));
  if (text.startsWith(QChar(0xFEFF))) text.remove(0, 1);
  if (text.trimmed().isEmpty()) {
    d.error = tr("the document is empty");
    return d;
  }
  d.text = text;
  return d;
}

QString documentFileFilter() {
  return tr("Documents (*.txt *.md *.markdown *.pdf);;Text files (*.txt *.md *.markdown *.csv *.json *.log);;"
            "PDF (*.pdf);;All files (*)");
}
