// Reads what the attention did out of a session through the C API's const getters, which may be
// called from inside the session's own callbacks, and copies it into Qt values for the UI.
#pragma once
#include "engine_types.h"

struct ts_session;

namespace probe {

// Bins across the whole cache for the layer x position heatmap.
constexpr int kBins = 512;

qint64 tokenCount(const ts_session* session);
EngineStats stats(const ts_session* session);
// The last step's vote scores, nLayer x kBins.
QVector<float> scores(const ts_session* session);
SelectionFrame frame(const ts_session* session, int nLayer);
// False while the document is not (or no longer) in the KV cache.
bool layout(const ts_session* session, int document, DocumentLayout* out);

}  // namespace probe
