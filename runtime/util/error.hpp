// Errors inside the runtime: an exception carrying a status code and one precise line.
// The C ABI (capi/) turns these into ts_status + ts_last_error(); nothing throws across it.
#pragma once
#include <stdexcept>
#include <string>

namespace ts {

enum class Status {
  ok = 0,
  invalid_arg,
  io,
  format,
  unsupported,
  out_of_memory,
  context_full,
  cancelled,
  truncated,
  internal,
};

const char* status_name(Status s) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

[[noreturn]] inline void fail(Status status, const std::string& message) { throw Error(status, message); }

}  // namespace ts
