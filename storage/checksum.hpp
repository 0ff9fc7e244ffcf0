// Checksums for storage files.
#pragma once

#include <cstdint>
#include <string_view>

namespace ees::storage {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum
/// RocksDB and ext4 use for their own records. `crc` continues an earlier
/// computation, so crc32c(b, crc32c(a)) == crc32c(a + b).
/// Known answer: crc32c("123456789") == 0xE3069283.
/// Uses the CPU's crc32 instruction where there is one.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0) noexcept;

/// The same, a byte at a time from a table: the reference `crc32c` is
/// tested against, and its fallback.
std::uint32_t crc32c_portable(std::string_view bytes,
                              std::uint32_t crc = 0) noexcept;

} // namespace ees::storage
