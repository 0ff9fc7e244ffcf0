// shared_bytes: the command of a log entry, shared by the entry's copies.
#include "protocol/raft/types.hpp"
#include "protocol/shared_bytes.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ees;
using namespace ees::raft;

TEST_CASE("copies of a log entry share the command's bytes instead of "
          "copying them") {
  log_entry e{term_t{1}, log_index{1}, entry_type::normal,
              std::string(300, 'c')};
  auto copy = e;
  CHECK(copy == e);
  CHECK(copy.data.data() == e.data.data());
  std::vector<log_entry> batch{e, e};
  CHECK(batch[1].data.data() == e.data.data());
}

TEST_CASE("shared_bytes compares by content and reads as the bytes it was "
          "made from") {
  shared_bytes empty;
  CHECK(empty.empty());
  CHECK(empty == "");
  CHECK(empty == shared_bytes{std::string{}});
  shared_bytes a{std::string("\0x", 2)};
  CHECK(a.size() == 2);
  CHECK(a == std::string("\0x", 2));
  CHECK(a != "x");
  CHECK(shared_bytes{"abc"} == shared_bytes{std::string_view{"abc"}});
  CHECK(shared_bytes{"abc"} != shared_bytes{"abd"});
  CHECK(std::string_view{shared_bytes{"abc"}} == "abc");
}
