// The payload of normal entries proposed through a replica: the leader's
// clock, then the client's command (DESIGN.md §4: apply never reads a clock;
// time comes from the leader's stamp in the entry).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ees::actors {

/// Layout: [format byte = 1][leader time, int64 ms, little-endian][command].
inline constexpr std::uint8_t stamp_format = 1;
inline constexpr std::size_t stamp_size = 9;

/// Returns the entry payload carrying `command` stamped with `time_ms`.
inline std::string stamp_command(std::int64_t time_ms,
                                 std::string_view command) {
  std::string out;
  out.reserve(stamp_size + command.size());
  out.push_back(static_cast<char>(stamp_format));
  auto bits = static_cast<std::uint64_t>(time_ms);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  out.append(command);
  return out;
}

/// Splits an entry payload into the leader time and the command; nullopt if
/// it is not a stamped payload (a corrupt or foreign log).
inline std::optional<std::pair<std::int64_t, std::string_view>>
unstamp_command(std::string_view data) {
  if (data.size() < stamp_size
      || static_cast<std::uint8_t>(data[0]) != stamp_format)
    return std::nullopt;
  std::uint64_t bits = 0;
  for (int i = 0; i < 8; ++i)
    bits |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(data[1 + i]))
            << (8 * i);
  return std::pair{static_cast<std::int64_t>(bits), data.substr(stamp_size)};
}

} // namespace ees::actors
