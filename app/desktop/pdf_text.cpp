#include "pdf_text.h"

#include <QCoreApplication>

#ifdef TS_HAVE_QTPDF
#include <QPdfDocument>
#include <QPdfSelection>

QString pdfText(const QString& path, QString* error) {
  QPdfDocument pdf;
  const QPdfDocument::Error e = pdf.load(path);
  if (e != QPdfDocument::Error::None) {
    switch (e) {
      case QPdfDocument::Error::FileNotFound: *error = QCoreApplication::translate("pdf", "file not found"); break;
      case QPdfDocument::Error::IncorrectPassword: *error = QCoreApplication::translate("pdf", "the PDF is password-protected"); break;
      case QPdfDocument::Error::UnsupportedSecurityScheme: *error = QCoreApplication::translate("pdf", "the PDF's encryption is not supported"); break;
      default: *error = QCoreApplication::translate("pdf", "not a readable PDF file");
    }
    return {};
  }
  QString text;
  for (int page = 0; page < pdf.pageCount(); ++page) {
    const QString pageText = pdf.getAllText(page).text().trimmed();
    if (pageText.isEmpty()) continue;
    if (!text.isEmpty()) text += QStringLiteral("\n\n");
    text += pageText;
  }
  if (text.isEmpty()) {
    *error = QCoreApplication::translate("pdf", "the PDF has no text layer (a scanned document needs OCR first)");
    return {};
  }
  return text;
}

#else

QString pdfText(const QString&, QString* error) {
  *error = QCoreApplication::translate("pdf", "this build of tokenselect-chat has no PDF support (QtPdf was not found)");
  return {};
}

#endif
