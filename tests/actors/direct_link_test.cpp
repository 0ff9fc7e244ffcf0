// Direct peer links (actors/direct_link.hpp) over real loopback sockets, in
// an actor system with CAF's real scheduler: every wait is bounded and ends
// on the awaited message or socket event.
#include <doctest/doctest.h>

#include "actors/direct_link.hpp"
#include "actors/type_ids.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <chrono>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace ees;
using namespace ees::actors;
using namespace std::chrono_literals;

namespace {

std::vector<envelope> sample_batch() {
  raft::message a;
  a.type = raft::message_type::append_request;
  a.from = node_id{1};
  a.to = node_id{2};
  a.term = term_t{3};
  a.index = log_index{41};
  a.entries.push_back(
    raft::log_entry{term_t{3}, log_index{42}, raft::entry_type::normal, "put"});
  raft::message h;
  h.type = raft::message_type::heartbeat_request;
  h.from = node_id{1};
  h.to = node_id{2};
  h.term = term_t{3};
  return {envelope{group_id{7}, a, ""}, envelope{group_id{8}, h, "x"}};
}

struct real_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    cfg.set("logger.file-verbosity", caf::atom("quiet"))
      .set("logger.console-verbosity", caf::atom("quiet"));
    cfg.add_message_types<caf::id_block::ees>();
    return cfg;
  }

  real_system() : sys{configure(cfg)} {}
};

/// A TCP connection to 127.0.0.1:port whose reads give up after 10 s.
int raw_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

void raw_send(int fd, const std::vector<char>& bytes) {
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL)
          == static_cast<ssize_t>(bytes.size()));
}

/// Connects to the listener on `port`, sends `chunks` and reports whether
/// the listener then closed the connection (end of stream within 10 s).
bool closed_after(std::uint16_t port,
                  const std::vector<std::vector<char>>& chunks) {
  int fd = raw_connect(port);
  for (const auto& chunk : chunks)
    raw_send(fd, chunk);
  char c;
  bool closed = ::recv(fd, &c, 1, 0) == 0;
  ::close(fd);
  return closed;
}

} // namespace

TEST_CASE("direct link wire: a batch round-trips through its frame; "
          "malformed, truncated or oversize input is an error") {
  auto batch = sample_batch();
  auto frame = direct::encode_frame(batch);
  REQUIRE(frame.size() > 4);
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i)
    len |= std::uint32_t{static_cast<unsigned char>(frame[i])} << (8 * i);
  CHECK(len == frame.size() - 4);
  auto back = direct::decode_payload(frame.data() + 4, len);
  REQUIRE(back);
  CHECK(*back == batch);
  CHECK_FALSE(direct::decode_payload(frame.data() + 4, len - 1));
  auto longer = std::vector<char>(frame.begin() + 4, frame.end());
  longer.push_back('\0');
  CHECK_FALSE(direct::decode_payload(longer.data(), longer.size()));

  auto hello = direct::encode_hello(node_id{9});
  REQUIRE(hello.size() == direct::hello_size);
  CHECK(direct::decode_hello(hello.data()) == node_id{9});
  auto bad_magic = hello;
  bad_magic[0] ^= 1;
  CHECK_FALSE(direct::decode_hello(bad_magic.data()));
  auto bad_version = hello;
  bad_version[4] ^= 1;
  CHECK_FALSE(direct::decode_hello(bad_version.data()));

  // A batch larger than a frame may be (a big snapshot) has no frame: the
  // link hands it to BASP.
  std::vector<envelope> huge{batch[0]};
  huge[0].snapshot_data.assign(direct::max_payload + 1, 's');
  CHECK(direct::encode_frame(huge).empty());
}

TEST_CASE("direct link: batches reach the peer's server, other messages go "
          "to the fallback, and a link whose peer went away terminates") {
  real_system rs;
  caf::scoped_actor server{rs.sys};
  caf::scoped_actor fallback{rs.sys};
  caf::scoped_actor watcher{rs.sys};
  auto l = direct::listener::start("127.0.0.1", node_id{2},
                                   caf::actor_cast<peer_actor>(server));
  REQUIRE(l);
  auto listener = std::move(*l);
  REQUIRE(listener->port() != 0);
  auto dialed = direct::dial(rs.sys, node_id{1}, "127.0.0.1", listener->port(),
                             1000ms, caf::actor_cast<caf::actor>(fallback));
  REQUIRE(dialed);
  auto link = caf::actor_cast<peer_actor>(*dialed);
  watcher->monitor(*dialed);

  auto batch = sample_batch();
  for (int round = 0; round < 3; ++round) {
    caf::anon_send(link, batch);
    bool got = false;
    server->receive(
      [&](std::vector<envelope>& b) {
        CHECK(b == batch);
        got = true;
      },
      caf::after(5s) >> [] {});
    CHECK(got);
  }
  // One envelope travels as a batch of one.
  caf::anon_send(link, batch[1]);
  bool got_one = false;
  server->receive(
    [&](std::vector<envelope>& b) {
      CHECK(b == std::vector<envelope>{batch[1]});
      got_one = true;
    },
    caf::after(5s) >> [] {});
  CHECK(got_one);
  // Anything else goes to BASP.
  caf::anon_send(link, atom::hello_v, node_id{1});
  bool hello = false;
  fallback->receive([&](atom::hello, node_id from) { hello = from.value == 1; },
                    caf::after(5s) >> [] {});
  CHECK(hello);

  // The peer goes away: a send after the connection broke fails, and the
  // link terminates (its monitors learn it); until then sends are quietly
  // lost, as Raft allows.
  listener.reset();
  bool down = false;
  for (int i = 0; i < 200 && !down; ++i) {
    caf::anon_send(link, batch);
    watcher->receive([&](caf::down_msg&) { down = true; },
                     caf::after(20ms) >> [] {});
  }
  CHECK(down);
  caf::anon_send(link, batch); // A dead link drops what it is sent.
}

TEST_CASE("direct link listener: a bad hello, no hello, an oversize or a "
          "malformed frame closes the connection and delivers nothing of it") {
  real_system rs;
  caf::scoped_actor server{rs.sys};
  auto l = direct::listener::start("127.0.0.1", node_id{2},
                                   caf::actor_cast<peer_actor>(server));
  REQUIRE(l);
  auto port = (*l)->port();
  auto frame = direct::encode_frame(sample_batch());

  auto hello = direct::encode_hello(node_id{1});
  SUBCASE("wrong magic") {
    auto bad = hello;
    bad[1] ^= 0x40;
    CHECK(closed_after(port, {bad, frame}));
    CHECK(server->mailbox().empty());
  }
  SUBCASE("no hello within hello_timeout") {
    CHECK(closed_after(port, {{'E', 'E'}}));
    CHECK(server->mailbox().empty());
  }
  SUBCASE("a length above max_payload") {
    auto n = direct::max_payload + 1;
    CHECK(closed_after(
      port, {hello,
             {static_cast<char>(n & 0xFF), static_cast<char>(n >> 8 & 0xFF),
              static_cast<char>(n >> 16 & 0xFF),
              static_cast<char>(n >> 24 & 0xFF)}}));
    CHECK(server->mailbox().empty());
  }
  SUBCASE("a good frame, then garbage: the good one arrives, no more") {
    CHECK(closed_after(port, {hello, frame, {3, 0, 0, 0, 'a', 'b', 'c'}}));
    int batches = 0;
    while (!server->mailbox().empty())
      server->receive([&](std::vector<envelope>&) { ++batches; });
    CHECK(batches == 1);
  }
}
