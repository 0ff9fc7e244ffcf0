// Immutable bytes that copies share: a log entry's command.
#pragma once

#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace ees {

/// An immutable byte string whose copies share one buffer.
///
/// Why: a leader copies each entry into its log, the ready it persists, the
/// AppendEntries of every follower and the committed batch it applies; a
/// follower into its log, its ready and its committed batch. With a
/// std::string each copy allocated and copied the command (log_entry copies
/// and raft_log::slice were 30% of the allocator's samples on a loaded
/// node); shared, each copy is a reference count.
///
/// Thread safety: as for std::shared_ptr<const std::string>; the bytes never
/// change, so copies may be read on any thread.
class shared_bytes {
public:
  shared_bytes() = default;

  shared_bytes(std::string bytes)
    : bytes_(bytes.empty()
               ? nullptr
               : std::make_shared<const std::string>(std::move(bytes))) {
    // nop
  }

  shared_bytes(std::string_view bytes) : shared_bytes(std::string{bytes}) {
    // nop
  }

  shared_bytes(const char* bytes) : shared_bytes(std::string{bytes}) {
    // nop
  }

  /// The bytes, valid while this object (or a copy) lives.
  const std::string& str() const {
    static const std::string none;
    return bytes_ ? *bytes_ : none;
  }

  std::string_view view() const {
    return str();
  }

  operator std::string_view() const {
    return view();
  }

  std::size_t size() const {
    return str().size();
  }

  bool empty() const {
    return size() == 0;
  }

  const char* data() const {
    return str().data();
  }

  friend bool operator==(const shared_bytes& a, const shared_bytes& b) {
    return a.view() == b.view();
  }

  friend bool operator!=(const shared_bytes& a, const shared_bytes& b) {
    return !(a == b);
  }

  // Text on the right converts to both string_view and shared_bytes; these
  // overloads take it as it is.
  friend bool operator==(const shared_bytes& a, std::string_view b) {
    return a.view() == b;
  }

  friend bool operator==(const shared_bytes& a, const std::string& b) {
    return a.view() == b;
  }

  friend bool operator==(const shared_bytes& a, const char* b) {
    return a.view() == b;
  }

  template <class Text>
  friend bool operator!=(const shared_bytes& a, const Text& b) {
    return !(a == b);
  }

  friend std::ostream& operator<<(std::ostream& out, const shared_bytes& x) {
    return out << x.view();
  }

private:
  std::shared_ptr<const std::string> bytes_;
};

/// Serializes as a std::string (CAF's inspectors: the wire format is the
/// one of the std::string this type replaced).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shared_bytes& x) {
  if constexpr (Inspector::reads_state) {
    return f(x.str());
  } else {
    std::string bytes;
    auto result = f(bytes);
    x = shared_bytes{std::move(bytes)};
    return result;
  }
}

} // namespace ees
