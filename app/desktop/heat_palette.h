// One colour scale for every heatmap in the app (dark violet -> red -> yellow, like "inferno"),
// as a lookup table so that painting 100k cells never computes a colour twice.
#pragma once
#include <QColor>
#include <QRgb>

namespace heat {

// t in [0, 1]; values outside are clamped.
QRgb rgb(double t);
// A shading for text on a light background: transparent at 0, nearly opaque at 1.
QColor wash(double t);

// Colours of the parts of the context that are always attended.
inline const QColor kSink{70, 130, 230};
inline const QColor kLocal{40, 170, 120};
inline const QColor kPassage{255, 214, 0};
// Sinks and local window shade text this lightly: they are attended always, not selected.
constexpr int kAlwaysAlpha = 70;

}  // namespace heat
