#include "storage/checksum.hpp"

#include <array>

namespace ees::storage {

namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    auto c = i;
    for (int bit = 0; bit < 8; ++bit)
      c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr auto crc_table = make_table();

} // namespace

std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc) noexcept {
  crc = ~crc;
  for (auto ch : bytes)
    crc
      = crc_table[(crc ^ static_cast<unsigned char>(ch)) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

} // namespace ees::storage
