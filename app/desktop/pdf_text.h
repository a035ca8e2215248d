// Text of a PDF, page by page, through QtPdf (Debian: qt6-pdf-dev). Without QtPdf in the build,
// every PDF is an error that says so.
#pragma once
#include <QString>

// The pages' text, separated by blank lines; on failure a null QString and *error says why.
QString pdfText(const QString& path, QString* error);
