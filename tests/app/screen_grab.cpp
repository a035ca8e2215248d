// ts_screen_grab OUT.png: saves the whole X screen as a PNG (screenshot.sh uses it under Xvfb,
// so that taking a screenshot needs nothing beyond Qt).
#include <QGuiApplication>
#include <QPixmap>
#include <QScreen>
#include <cstdio>

int main(int argc, char** argv) {
  QGuiApplication app(argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: ts_screen_grab OUT.png\n");
    return 2;
  }
  const QPixmap shot = QGuiApplication::primaryScreen()->grabWindow(0);
  if (shot.isNull() || !shot.save(QString::fromLocal8Bit(argv[1]), "PNG")) {
    std::fprintf(stderr, "ts_screen_grab: could not grab the screen into %s\n", argv[1]);
    return 1;
  }
  return 0;
}
