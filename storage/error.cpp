#include "storage/error.hpp"

namespace ees::storage {

const char* to_string(storage_errc code) {
  switch (code) {
    case storage_errc::io_error:
      return "io_error";
    case storage_errc::corruption:
      return "corruption";
    case storage_errc::unsupported_version:
      return "unsupported_version";
    case storage_errc::invalid_argument:
      return "invalid_argument";
  }
  return "unknown";
}

std::string to_string(const storage_error& err) {
  std::string out = to_string(err.code);
  out += ": ";
  out += err.message;
  return out;
}

} // namespace ees::storage
