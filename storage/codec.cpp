#include "storage/codec.hpp"

#include <limits>
#include <set>

namespace ees::storage {

// -- building blocks ----------------------------------------------------------

void put_u8(std::string& out, std::uint8_t x) {
  out.push_back(static_cast<char>(x));
}

void put_u32(std::string& out, std::uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xFFu));
}

void put_u64(std::string& out, std::uint64_t x) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xFFu));
}

bool byte_reader::u8(std::uint8_t& x) noexcept {
  if (in_.empty())
    return false;
  x = static_cast<unsigned char>(in_[0]);
  in_.remove_prefix(1);
  return true;
}

bool byte_reader::u32(std::uint32_t& x) noexcept {
  if (in_.size() < 4)
    return false;
  x = 0;
  for (int i = 0; i < 4; ++i)
    x |= std::uint32_t{static_cast<unsigned char>(in_[i])} << (8 * i);
  in_.remove_prefix(4);
  return true;
}

bool byte_reader::u64(std::uint64_t& x) noexcept {
  if (in_.size() < 8)
    return false;
  x = 0;
  for (int i = 0; i < 8; ++i)
    x |= std::uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
  in_.remove_prefix(8);
  return true;
}

bool byte_reader::bytes(std::uint64_t n, std::string_view& x) noexcept {
  if (n > in_.size())
    return false;
  x = in_.substr(0, static_cast<std::size_t>(n));
  in_.remove_prefix(static_cast<std::size_t>(n));
  return true;
}

namespace {

storage_error corrupt(const char* what, const char* why) {
  return storage_error{storage_errc::corruption,
                       std::string{what} + ": " + why};
}

/// Checks the version byte that starts every record.
status read_version(byte_reader& r, const char* what) {
  std::uint8_t v = 0;
  if (!r.u8(v))
    return corrupt(what, "empty record");
  if (v == codec_version)
    return {};
  if (v > codec_version)
    return storage_error{storage_errc::unsupported_version,
                         std::string{what} + ": unknown format version "
                           + std::to_string(v)};
  return corrupt(what, "invalid format version 0");
}

void put_ids(std::string& out, const std::set<node_id>& ids) {
  EES_ASSERT(ids.size() <= std::numeric_limits<std::uint32_t>::max(),
             "%zu ids do not fit the snapshot meta encoding", ids.size());
  put_u32(out, static_cast<std::uint32_t>(ids.size()));
  for (auto id : ids)
    put_u64(out, id.value);
}

/// Reads a strictly ascending id set; false on truncation or disorder.
bool read_ids(byte_reader& r, std::set<node_id>& ids) {
  std::uint32_t n = 0;
  if (!r.u32(n) || std::uint64_t{n} * 8 > r.remaining())
    return false;
  std::uint64_t prev = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint64_t id = 0;
    if (!r.u64(id) || (i > 0 && id <= prev))
      return false;
    ids.emplace_hint(ids.end(), id);
    prev = id;
  }
  return true;
}

} // namespace

// -- log_entry ----------------------------------------------------------------

std::string encode(const raft::log_entry& x) {
  std::string out;
  out.reserve(1 + 8 + 8 + 1 + 8 + x.data.size());
  put_u8(out, codec_version);
  put_u64(out, x.term.value);
  put_u64(out, x.index.value);
  put_u8(out, static_cast<std::uint8_t>(x.type));
  put_u64(out, x.data.size());
  out += x.data;
  return out;
}

result<raft::log_entry> decode_log_entry(std::string_view bytes) {
  constexpr auto what = "log entry";
  byte_reader r{bytes};
  if (auto st = read_version(r, what); !st)
    return st.error();
  raft::log_entry x;
  std::uint8_t type = 0;
  std::uint64_t size = 0;
  std::string_view data;
  if (!r.u64(x.term.value) || !r.u64(x.index.value) || !r.u8(type)
      || !r.u64(size) || !r.bytes(size, data))
    return corrupt(what, "truncated");
  if (r.remaining() != 0)
    return corrupt(what, "trailing bytes");
  switch (static_cast<raft::entry_type>(type)) {
    case raft::entry_type::normal:
    case raft::entry_type::noop:
    case raft::entry_type::config:
      x.type = static_cast<raft::entry_type>(type);
      break;
    default:
      return corrupt(what, "unknown entry type");
  }
  x.data = shared_bytes{data};
  return x;
}

// -- hard_state ---------------------------------------------------------------

std::string encode(const raft::hard_state& x) {
  std::string out;
  out.reserve(1 + 3 * 8);
  put_u8(out, codec_version);
  put_u64(out, x.current_term.value);
  put_u64(out, x.voted_for.value);
  put_u64(out, x.commit_index.value);
  return out;
}

result<raft::hard_state> decode_hard_state(std::string_view bytes) {
  constexpr auto what = "hard state";
  byte_reader r{bytes};
  if (auto st = read_version(r, what); !st)
    return st.error();
  raft::hard_state x;
  if (!r.u64(x.current_term.value) || !r.u64(x.voted_for.value)
      || !r.u64(x.commit_index.value))
    return corrupt(what, "truncated");
  if (r.remaining() != 0)
    return corrupt(what, "trailing bytes");
  return x;
}

// -- snapshot_meta ------------------------------------------------------------

std::string encode(const raft::snapshot_meta& x) {
  std::string out;
  out.reserve(1 + 2 * 8 + 2 * 4
              + 8 * (x.config.voters.size() + x.config.learners.size()));
  put_u8(out, codec_version);
  put_u64(out, x.last_index.value);
  put_u64(out, x.last_term.value);
  put_ids(out, x.config.voters);
  put_ids(out, x.config.learners);
  return out;
}

result<raft::snapshot_meta> decode_snapshot_meta(std::string_view bytes) {
  constexpr auto what = "snapshot meta";
  byte_reader r{bytes};
  if (auto st = read_version(r, what); !st)
    return st.error();
  raft::snapshot_meta x;
  if (!r.u64(x.last_index.value) || !r.u64(x.last_term.value))
    return corrupt(what, "truncated");
  if (!read_ids(r, x.config.voters) || !read_ids(r, x.config.learners))
    return corrupt(what, "truncated or unordered member ids");
  if (r.remaining() != 0)
    return corrupt(what, "trailing bytes");
  for (auto id : x.config.learners)
    if (x.config.voters.count(id) > 0)
      return corrupt(what, "a node is both voter and learner");
  return x;
}

} // namespace ees::storage
