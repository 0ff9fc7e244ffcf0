// The disk codecs (style rule 8): every durable type round-trips, the bytes
// are canonical, and no truncated, garbage or newer-version input is ever
// accepted or crashes the decoder.
#include "storage/checksum.hpp"
#include "storage/codec.hpp"

#include "harness.hpp"

#include <cstdint>
#include <limits>
#include <random>

using namespace ees;
using namespace ees::storage;
using namespace ees::storage::test;

namespace {

constexpr auto max64 = std::numeric_limits<std::uint64_t>::max();

std::vector<raft::log_entry> sample_entries() {
  return {
    entry(1, 1),
    entry(2, 1, "x"),
    entry(3, 2, "", raft::entry_type::noop),
    entry(4, 2, std::string("\0\xff\x01 binary", 10), raft::entry_type::config),
    entry(max64, max64, std::string(100000, 'z')),
  };
}

std::vector<raft::hard_state> sample_states() {
  return {hs(0, 0, 0), hs(1, 2, 3), hs(max64, max64, max64)};
}

std::vector<raft::snapshot_meta> sample_metas() {
  return {
    raft::snapshot_meta{},
    snap(0, 0, members({1})),
    snap(10, 3),
    snap(17, 4, members({1, 2, 3}, {4, 5})),
    snap(max64, max64, members({1, max64}, {1ull << 40})),
    snap(5, 5, members({}, {7})),
  };
}

/// Every strict prefix of `bytes` must be rejected.
template <class Decode>
void check_truncations_rejected(const std::string& bytes, Decode decode) {
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    CAPTURE(len);
    CHECK_FALSE(decode(std::string_view{bytes}.substr(0, len)));
  }
}

/// Random bytes and single-byte mutations never crash the decoder (ASan
/// and UBSan watch this loop); anything accepted re-encodes to the input.
template <class Decode>
void fuzz(const std::string& good, Decode decode) {
  std::mt19937_64 rng{42};
  for (int round = 0; round < 2000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      bytes.resize(rng() % 64);
      for (auto& ch : bytes)
        ch = static_cast<char>(rng());
    } else {
      bytes = good;
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    auto back = decode(bytes);
    if (back)
      CHECK(encode(*back) == bytes);
  }
}

} // namespace

TEST_CASE("log_entry round-trips through the codec, canonically") {
  for (const auto& e : sample_entries()) {
    CAPTURE(e);
    auto bytes = encode(e);
    CHECK(static_cast<std::uint8_t>(bytes[0]) == codec_version);
    auto back = decode_log_entry(bytes);
    REQUIRE(back);
    CHECK(*back == e);
    CHECK(encode(*back) == bytes);
  }
}

TEST_CASE("hard_state round-trips through the codec, canonically") {
  for (const auto& s : sample_states()) {
    CAPTURE(s);
    auto bytes = encode(s);
    CHECK(bytes.size() == 25);
    auto back = decode_hard_state(bytes);
    REQUIRE(back);
    CHECK(*back == s);
    CHECK(encode(*back) == bytes);
  }
}

TEST_CASE("snapshot_meta round-trips through the codec with its membership") {
  for (const auto& m : sample_metas()) {
    CAPTURE(m);
    auto bytes = encode(m);
    auto back = decode_snapshot_meta(bytes);
    REQUIRE(back);
    CHECK(*back == m);
    CHECK(encode(*back) == bytes);
  }
  CHECK(encode(snap(3, 1, members({1, 2}, {3})))
        != encode(snap(3, 1, members({1, 2, 3}))));
}

TEST_CASE("the codec's bytes are fixed: a format change needs a new version") {
  // Golden bytes: changing the layout without bumping codec_version would
  // make old data unreadable.
  CHECK(encode(hs(1, 2, 3))
        == std::string("\x01"
                       "\x01\0\0\0\0\0\0\0"
                       "\x02\0\0\0\0\0\0\0"
                       "\x03\0\0\0\0\0\0\0",
                       25));
  CHECK(encode(entry(2, 1, "ab", raft::entry_type::noop))
        == std::string("\x01"
                       "\x01\0\0\0\0\0\0\0"
                       "\x02\0\0\0\0\0\0\0"
                       "\x01"
                       "\x02\0\0\0\0\0\0\0"
                       "ab",
                       28));
  CHECK(encode(snap(5, 2, members({7}, {9})))
        == std::string("\x01"
                       "\x05\0\0\0\0\0\0\0"
                       "\x02\0\0\0\0\0\0\0"
                       "\x01\0\0\0"
                       "\x07\0\0\0\0\0\0\0"
                       "\x01\0\0\0"
                       "\x09\0\0\0\0\0\0\0",
                       41));
}

TEST_CASE("decoders reject every truncation") {
  for (const auto& e : sample_entries())
    if (e.data.size() < 100)
      check_truncations_rejected(encode(e), decode_log_entry);
  for (const auto& s : sample_states())
    check_truncations_rejected(encode(s), decode_hard_state);
  for (const auto& m : sample_metas())
    check_truncations_rejected(encode(m), decode_snapshot_meta);
}

TEST_CASE("decoders reject trailing bytes") {
  CHECK_FALSE(decode_log_entry(encode(entry(1, 1, "a")) + "x"));
  CHECK_FALSE(decode_hard_state(encode(hs(1, 1, 1)) + "x"));
  CHECK_FALSE(decode_snapshot_meta(encode(snap(1, 1)) + "x"));
}

TEST_CASE("decoders report an unknown version as unsupported_version") {
  auto newer = [](std::string bytes) {
    bytes[0] = static_cast<char>(codec_version + 1);
    return bytes;
  };
  auto e = decode_log_entry(newer(encode(entry(1, 1))));
  REQUIRE_FALSE(e);
  CHECK(e.error().code == storage_errc::unsupported_version);
  auto s = decode_hard_state(newer(encode(hs(1, 1, 1))));
  REQUIRE_FALSE(s);
  CHECK(s.error().code == storage_errc::unsupported_version);
  auto m = decode_snapshot_meta(newer(encode(snap(1, 1))));
  REQUIRE_FALSE(m);
  CHECK(m.error().code == storage_errc::unsupported_version);
  auto zero = encode(hs(1, 1, 1));
  zero[0] = '\0';
  auto z = decode_hard_state(zero);
  REQUIRE_FALSE(z);
  CHECK(z.error().code == storage_errc::corruption);
}

TEST_CASE("decoders reject garbage with a corruption error") {
  SUBCASE("unknown entry type") {
    auto bytes = encode(entry(1, 1, "a"));
    bytes[17] = '\x07';
    auto e = decode_log_entry(bytes);
    REQUIRE_FALSE(e);
    CHECK(e.error().code == storage_errc::corruption);
  }
  SUBCASE("entry size larger than the input") {
    auto bytes = encode(entry(1, 1, "a"));
    bytes[18] = '\xff'; // size low byte: 255 > 1 remaining byte
    CHECK_FALSE(decode_log_entry(bytes));
    bytes = encode(entry(1, 1, "a"));
    for (int i = 18; i < 26; ++i)
      bytes[i] = '\xff'; // size 2^64-1: must not allocate or overflow
    CHECK_FALSE(decode_log_entry(bytes));
  }
  SUBCASE("member count larger than the input") {
    auto bytes = encode(snap(1, 1, members({1})));
    for (int i = 17; i < 21; ++i)
      bytes[i] = '\xff';
    CHECK_FALSE(decode_snapshot_meta(bytes));
  }
  SUBCASE("unordered or duplicate member ids") {
    auto bytes = encode(snap(1, 1, members({1, 2})));
    // Swap the two voter ids (offsets 21 and 29 hold their low bytes).
    std::swap(bytes[21], bytes[29]);
    CHECK_FALSE(decode_snapshot_meta(bytes));
    bytes[21] = bytes[29];
    CHECK_FALSE(decode_snapshot_meta(bytes));
  }
  SUBCASE("a node both voter and learner") {
    auto bytes = encode(snap(1, 1, members({1, 2}, {3})));
    bytes[bytes.size() - 8] = '\x02';
    auto m = decode_snapshot_meta(bytes);
    REQUIRE_FALSE(m);
    CHECK(m.error().code == storage_errc::corruption);
  }
  SUBCASE("random bytes and mutations") {
    fuzz(encode(entry(9, 4, "payload")), decode_log_entry);
    fuzz(encode(hs(4, 2, 9)), decode_hard_state);
    fuzz(encode(snap(9, 4, members({1, 2, 3}, {4}))), decode_snapshot_meta);
  }
}

TEST_CASE("crc32c matches the published check value") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("56789", crc32c("1234")) == crc32c("123456789"));
  CHECK(crc32c_portable("123456789") == 0xE3069283u);
}

TEST_CASE("crc32c with the CPU's instruction equals the table version for "
          "every length and alignment") {
  std::string data;
  for (int i = 0; i < 300; ++i)
    data.push_back(static_cast<char>(i * 131 + 7));
  for (std::size_t off = 0; off < 9; ++off)
    for (std::size_t len = 0; off + len <= data.size(); len += 7) {
      std::string_view piece{data.data() + off, len};
      CHECK(crc32c(piece, 0x1234u) == crc32c_portable(piece, 0x1234u));
    }
}
