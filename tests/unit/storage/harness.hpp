// Helpers for the storage unit tests: value builders, doctest printers, a
// self-deleting temp directory and (from tests/support/faulty_env.hpp) a
// RocksDB file system that fails writes and fsyncs on demand.
#pragma once

#include "protocol/raft/node.hpp"
#include "protocol/raft/types.hpp"
#include "storage/error.hpp"
#include "tests/support/faulty_env.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

// Printers so that doctest shows values instead of "{?}" on failures.
namespace ees {
template <class Tag>
std::ostream& operator<<(std::ostream& os, strong_int<Tag> x) {
  return os << x.value;
}
} // namespace ees

namespace ees::raft {
inline std::ostream& operator<<(std::ostream& os, const log_entry& e) {
  return os << "entry{t=" << e.term << " i=" << e.index
            << " type=" << static_cast<int>(e.type) << " size=" << e.data.size()
            << "}";
}
inline std::ostream& operator<<(std::ostream& os, const hard_state& s) {
  return os << "hard_state{t=" << s.current_term << " vote=" << s.voted_for
            << " commit=" << s.commit_index << "}";
}
inline std::ostream& operator<<(std::ostream& os, const membership& m) {
  os << "{voters=";
  for (auto id : m.voters)
    os << id << ",";
  os << " learners=";
  for (auto id : m.learners)
    os << id << ",";
  return os << "}";
}
inline std::ostream& operator<<(std::ostream& os, const snapshot_meta& m) {
  return os << "snapshot{i=" << m.last_index << " t=" << m.last_term << " "
            << m.config << "}";
}
inline std::ostream& operator<<(std::ostream& os, const persistent_state& p) {
  os << "persistent_state{" << p.state << " " << p.snapshot << " entries=[";
  for (const auto& e : p.entries)
    os << e << " ";
  return os << "]}";
}
} // namespace ees::raft

namespace ees::storage {
inline std::ostream& operator<<(std::ostream& os, storage_errc c) {
  return os << to_string(c);
}
inline std::ostream& operator<<(std::ostream& os, const storage_error& e) {
  return os << to_string(e);
}
} // namespace ees::storage

namespace ees::storage::test {

inline raft::log_entry entry(std::uint64_t index, std::uint64_t term,
                             std::string data = {},
                             raft::entry_type type = raft::entry_type::normal) {
  return raft::log_entry{term_t{term}, log_index{index}, type, std::move(data)};
}

/// Entries [first, last] of term `term`, payload "<index>@<term>".
inline std::vector<raft::log_entry>
entries(std::uint64_t first, std::uint64_t last, std::uint64_t term) {
  std::vector<raft::log_entry> out;
  for (auto i = first; i <= last; ++i)
    out.push_back(
      entry(i, term, std::to_string(i) + "@" + std::to_string(term)));
  return out;
}

inline raft::hard_state hs(std::uint64_t term, std::uint64_t vote,
                           std::uint64_t commit) {
  return raft::hard_state{term_t{term}, node_id{vote}, log_index{commit}};
}

inline raft::membership members(std::initializer_list<std::uint64_t> voters,
                                std::initializer_list<std::uint64_t> learners
                                = {}) {
  raft::membership m;
  for (auto v : voters)
    m.voters.insert(node_id{v});
  for (auto l : learners)
    m.learners.insert(node_id{l});
  return m;
}

inline raft::snapshot_meta snap(std::uint64_t index, std::uint64_t term,
                                raft::membership m = members({1, 2, 3})) {
  return raft::snapshot_meta{log_index{index}, term_t{term}, std::move(m)};
}

/// A fresh directory (mkdtemp under $TMPDIR or /tmp), deleted with all its
/// contents when the object goes away.
class temp_dir {
public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string{base != nullptr && *base ? base : "/tmp"}
                       + "/ees-storage-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path_ = buf.data();
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

// The fault-injecting RocksDB file system lives in tests/support, shared
// with the actor tests.
using ees::test::fault_switch;
using ees::test::make_faulty_env;

} // namespace ees::storage::test
