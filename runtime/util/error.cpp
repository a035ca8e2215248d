#include "util/error.hpp"

namespace ts {

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::ok: return "ok";
    case Status::invalid_arg: return "invalid argument";
    case Status::io: return "I/O error";
    case Status::format: return "format error";
    case Status::unsupported: return "unsupported";
    case Status::out_of_memory: return "out of memory";
    case Status::context_full: return "context full";
    case Status::cancelled: return "cancelled";
    case Status::truncated: return "truncated";
    case Status::internal: return "internal error";
  }
  return "unknown";
}

}  // namespace ts
