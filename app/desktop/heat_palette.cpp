#include "heat_palette.h"

#include <QVector>
#include <algorithm>
#include <array>
#include <cmath>

namespace heat {

namespace {

const QVector<QRgb>& table() {
  static const QVector<QRgb> lut = [] {
    // Control points of an inferno-like scale.
    const std::array<QColor, 6> stops{QColor(12, 8, 38), QColor(85, 15, 109), QColor(170, 45, 95),
                                      QColor(235, 95, 40), QColor(250, 175, 20), QColor(252, 250, 160)};
    QVector<QRgb> out(256);
    for (int i = 0; i < 256; ++i) {
      const double x = i / 255.0 * (stops.size() - 1);
      const int a = std::min(int(x), int(stops.size()) - 2);
      const double f = x - a;
      const QColor& p = stops[size_t(a)];
      const QColor& q = stops[size_t(a) + 1];
      out[i] = qRgb(int(p.red() + f * (q.red() - p.red())), int(p.green() + f * (q.green() - p.green())),
                    int(p.blue() + f * (q.blue() - p.blue())));
    }
    return out;
  }();
  return lut;
}

}  // namespace

QRgb rgb(double t) { return table()[std::clamp(int(t * 255.0 + 0.5), 0, 255)]; }

QColor wash(double t) {
  t = std::clamp(t, 0.0, 1.0);
  // The bright end only, so text stays readable; alpha grows faster than linearly, so the
  // passages selected far more often than the rest stand out from the many picked now and then.
  QColor c = QColor::fromRgb(rgb(0.45 + 0.55 * t));
  c.setAlphaF(0.9 * std::pow(t, 1.5));
  return c;
}

}  // namespace heat
