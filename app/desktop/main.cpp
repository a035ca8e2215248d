// tokenselect-chat [--model FILE.gguf] [DOCUMENT...]: chat over whole long documents with
// TokenSelect, and watch which tokens the attention selects.
#include <QApplication>
#include <QCommandLineParser>

#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName("TokenSelect");
  QApplication::setApplicationName("tokenselect-chat");
  QApplication::setApplicationDisplayName("TokenSelect Chat");
  QApplication::setApplicationVersion(TS_VERSION);
  QApplication::setDesktopFileName("tokenselect-chat");

  QCommandLineParser args;
  args.setApplicationDescription("Chat over whole long documents with TokenSelect attention.");
  args.addHelpOption();
  args.addVersionOption();
  const QCommandLineOption model({"m", "model"}, "Open this GGUF model.", "file");
  args.addOption(model);
  args.addPositionalArgument("documents", "Documents to add (.txt, .md, .pdf).", "[document...]");
  args.process(app);

  MainWindow window(args.value(model));
  window.show();
  window.openFiles(args.positionalArguments());
  return app.exec();
}
