// Direct peer links (actors/direct_link.hpp) over real loopback sockets, in
// an actor system with CAF's real scheduler: every wait is bounded and ends
// on the awaited message or socket event.
#include <doctest/doctest.h>

#include "actors/direct_link.hpp"
#include "actors/type_ids.hpp"
#include "ees/cluster/client.hpp"
#include "tests/actors/support.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <netinet/in.h>
#include <set>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace ees;
using namespace ees::actors;
using namespace std::chrono_literals;
using ees::test::log_watch;

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

std::vector<client_call> sample_calls() {
  return {client_call{1, group_id{7}, false, 0, "put"},
          client_call{2, group_id{8}, true, 2, std::string(300, 'q')}};
}

std::vector<client_answer> sample_answers() {
  client_answer a;
  a.id = 1;
  a.reply.ok = true;
  a.reply.value = "done";
  a.reply.applied = log_index{9};
  client_answer b;
  b.id = 2;
  b.reply.error = "not_leader";
  b.reply.leader = node_id{3};
  b.reply.leader_address = "127.0.0.1:7003";
  return {a, b};
}

struct real_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    cfg.set("logger.file-verbosity", caf::atom("quiet"))
      .set("logger.console-verbosity", caf::atom("quiet"));
    cfg.add_message_types<caf::id_block::ees>();
    cfg.load<caf::io::middleman>();
    return cfg;
  }

  real_system() : sys{configure(cfg)} {}
};

/// A listener of node 2 whose server is a scoped actor, and scoped actors
/// for a link's fallback and for watching it.
struct link_fixture : real_system {
  caf::scoped_actor server{sys};
  caf::scoped_actor fallback{sys};
  caf::scoped_actor watcher{sys};
  std::unique_ptr<direct::listener> listener;

  link_fixture() {
    auto l = direct::listener::start("127.0.0.1", node_id{2},
                                     caf::actor_cast<server_actor>(server));
    REQUIRE(l);
    listener = std::move(*l);
    REQUIRE(listener->port() != 0);
  }

  /// A peer link of node 1 to the listener, watched.
  peer_actor dial_peer() {
    auto dialed = direct::dial(sys, node_id{1}, "127.0.0.1", listener->port(),
                               1000ms, caf::actor_cast<caf::actor>(fallback));
    REQUIRE(dialed);
    watcher->monitor(*dialed);
    return caf::actor_cast<peer_actor>(*dialed);
  }

  /// A client link to the listener, answering to `client`, watched.
  std::shared_ptr<direct::client_link> dial_client(caf::scoped_actor& client,
                                                   std::uint64_t tag) {
    auto dialed
      = direct::client_link::dial(sys, tag, "127.0.0.1", listener->port(),
                                  1000ms, caf::actor_cast<caf::actor>(fallback),
                                  caf::actor_cast<client_sink_actor>(client));
    REQUIRE(dialed);
    watcher->monitor((*dialed)->handle());
    return *dialed;
  }
};

/// What name the actor behind `sink` has: "direct_link" for the server's
/// side of a client's direct link.
std::string sink_name(const client_sink_actor& sink) {
  auto* a = dynamic_cast<caf::monitorable_actor*>(
    caf::actor_cast<caf::abstract_actor*>(sink));
  return a != nullptr ? a->name() : "";
}

/// A server for a client's calls and subscriptions only: offers `port` as
/// its direct port, tells `observer` (atom::calls, payload, sink name) of
/// every call and answers it with its payload, except the first call of
/// "hold-once", which it never answers, and of "held", which it answers only
/// on atom::flush. It tells `observer` (atom::subscribe, owner) of a
/// subscription and acknowledges it only on atom::flush.
caf::behavior calls_server(caf::event_based_actor* self, caf::actor observer) {
  auto port = std::make_shared<std::uint16_t>(0);
  auto held = std::make_shared<std::set<std::string>>();
  auto subscribed = std::make_shared<
    std::vector<caf::typed_response_promise<caf::ok_atom>>>();
  auto later = std::make_shared<
    std::vector<std::pair<client_sink_actor, client_answer>>>();
  return {
    [self, observer, subscribed](atom::client, atom::subscribe, group_id,
                                 std::string& owner, client_sink_actor&) {
      subscribed->push_back(self->make_response_promise<caf::ok_atom>());
      self->send(observer, atom::subscribe_v, owner);
      return subscribed->back();
    },
    [self, subscribed, later](atom::flush) {
      for (auto& rp : *subscribed)
        rp.deliver(caf::ok_atom::value);
      subscribed->clear();
      for (auto& [sink, answer] : *later)
        self->send(sink, atom::answers_v, std::vector<client_answer>{answer});
      later->clear();
    },
    [port](atom::configure, std::uint16_t p) { *port = p; },
    [port](atom::direct_port) { return *port; },
    [self, observer, held, later](atom::client, atom::calls,
                                  std::vector<client_call>& calls,
                                  client_sink_actor& sink) {
      std::vector<client_answer> answers;
      for (auto& call : calls) {
        self->send(observer, atom::calls_v, call.payload, sink_name(sink));
        if (call.payload == "hold-once" && held->insert(call.payload).second)
          continue;
        client_answer a;
        a.id = call.id;
        a.reply.ok = true;
        a.reply.value = call.payload;
        if (call.payload == "held")
          later->emplace_back(sink, std::move(a));
        else
          answers.push_back(std::move(a));
      }
      if (!answers.empty())
        self->send(sink, atom::answers_v, std::move(answers));
    },
  };
}

/// Connects socket `fd` to 127.0.0.1:port and makes its reads give up
/// after 10 s; allocates no descriptor.
bool raw_connect(int fd, std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return false;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return true;
}

/// Whether this is a sanitized build (EES_SANITIZE: ASan and UBSan together).
#ifdef __SANITIZE_ADDRESS__
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

/// Holds this process's descriptors to those open now (RLIMIT_NOFILE's soft
/// limit at the lowest free descriptor) until destroyed: the next socket,
/// open or accept fails with EMFILE.
class descriptors_exhausted {
public:
  descriptors_exhausted() {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    int lowest_free = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(lowest_free >= 0);
    ::close(lowest_free);
    auto limit = saved_;
    limit.rlim_cur = static_cast<rlim_t>(lowest_free);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
    int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(probe < 0);
    REQUIRE(errno == EMFILE);
  }
  ~descriptors_exhausted() {
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  descriptors_exhausted(const descriptors_exhausted&) = delete;
  descriptors_exhausted& operator=(const descriptors_exhausted&) = delete;

private:
  rlimit saved_{};
};

/// A TCP connection to 127.0.0.1:port whose reads give up after 10 s.
int raw_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  REQUIRE(raw_connect(fd, port));
  return fd;
}

void raw_send(int fd, const std::vector<char>& bytes) {
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL)
          == static_cast<ssize_t>(bytes.size()));
}

/// A listening socket on 127.0.0.1 (its port in `port`) whose accepts and
/// the reads of what it accepts give up after 10 s, with a small receive
/// buffer: a sender fills it soon.
int raw_listener(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  int rcvbuf = 64 << 10;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

/// Accepts one connection of `raw_listener` (-1 after 10 s) and sets its
/// reads to give up after 10 s.
int raw_accept(int listener) {
  int fd = ::accept(listener, nullptr, nullptr);
  if (fd >= 0) {
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  return fd;
}

/// Reads up to `n` bytes, fewer if nothing arrives for 10 s.
std::vector<char> raw_read(int fd, std::size_t n) {
  std::vector<char> out(n);
  std::size_t got = 0;
  while (got < n) {
    auto r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0)
      break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

/// Takes every message waiting for `who` (each must be a `Ts...`) and
/// returns how many there were.
template <class... Ts>
int count_waiting(caf::scoped_actor& who) {
  int n = 0;
  while (!who->mailbox().empty())
    who->receive([&](Ts&...) { ++n; });
  return n;
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
  auto said = direct::decode_hello(hello.data());
  REQUIRE(said);
  CHECK_FALSE(said->client);
  CHECK(said->id == 9);
  auto client_hello = direct::encode_client_hello(77);
  REQUIRE(client_hello.size() == direct::hello_size);
  said = direct::decode_hello(client_hello.data());
  REQUIRE(said);
  CHECK(said->client);
  CHECK(said->id == 77);
  auto bad_magic = hello;
  bad_magic[0] ^= 1;
  CHECK_FALSE(direct::decode_hello(bad_magic.data()));
  auto bad_version = hello;
  bad_version[4] ^= 1;
  CHECK_FALSE(direct::decode_hello(bad_version.data()));

  // A client's calls and a server's answers round-trip too.
  auto calls = sample_calls();
  auto calls_frame = direct::encode_frame(calls);
  REQUIRE(calls_frame.size() > 4);
  auto calls_back = direct::decode_payload<std::vector<client_call>>(
    calls_frame.data() + 4, calls_frame.size() - 4);
  REQUIRE(calls_back);
  CHECK(*calls_back == calls);
  CHECK_FALSE(direct::decode_payload<std::vector<client_call>>(
    calls_frame.data() + 4, calls_frame.size() - 5));
  auto answers = sample_answers();
  auto answers_frame = direct::encode_frame(answers);
  auto answers_back = direct::decode_payload<std::vector<client_answer>>(
    answers_frame.data() + 4, answers_frame.size() - 4);
  REQUIRE(answers_back);
  CHECK(*answers_back == answers);

  // A batch larger than a frame may be (a big snapshot) has no frame: the
  // link hands it to BASP.
  std::vector<envelope> huge{batch[0]};
  huge[0].snapshot_data.assign(direct::max_payload + 1, 's');
  CHECK(direct::encode_frame(huge).empty());
}

TEST_CASE_FIXTURE(link_fixture,
                  "direct link: batches reach the peer's server, other "
                  "messages go to the fallback, and a link whose peer went "
                  "away terminates") {
  auto link = dial_peer();

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

TEST_CASE_FIXTURE(link_fixture,
                  "direct link: a batch bigger than max_backlog (a snapshot "
                  "for a follower) goes to BASP, and the link stays up for "
                  "the batches after it") {
  auto link = dial_peer();
  auto big = sample_batch();
  big[0].snapshot_data.assign(direct::max_backlog + 1, 's');
  caf::anon_send(link, big);
  bool via_basp = false;
  fallback->receive([&](std::vector<envelope>& b) { via_basp = b == big; },
                    caf::after(10s) >> [] {});
  CHECK(via_basp);
  auto small = sample_batch();
  caf::anon_send(link, small);
  bool got = false;
  server->receive([&](std::vector<envelope>& b) { got = b == small; },
                  caf::after(10s) >> [] {});
  CHECK(got);
  CHECK(server->mailbox().empty());
  CHECK(watcher->mailbox().empty()); // No down_msg: the link is up.
}

TEST_CASE_FIXTURE(link_fixture,
                  "direct link listener: a bad hello, no hello, an oversize "
                  "or a malformed frame closes the connection and delivers "
                  "nothing of it") {
  auto port = listener->port();
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
    CHECK(count_waiting<std::vector<envelope>>(server) == 1);
  }
}

TEST_CASE_FIXTURE(link_fixture,
                  "direct link listener: an accept that fails for want of "
                  "descriptors is retried, and the connection that waited "
                  "is served once descriptors are free again"
                    // UBSan's vptr check opens a pipe to probe memory: without
                    // a free descriptor, every check it makes fails.
                    * doctest::skip(sanitized)) {
  log_watch log;
  // Sockets are made first: while descriptors are exhausted, none can be.
  std::vector<int> fds;
  for (int i = 0; i < 2; ++i) {
    fds.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fds.back() >= 0);
  }
  {
    descriptors_exhausted exhausted;
    // The first connection may still get the descriptor that an accept
    // blocked since before took (Linux reserves it first); the accept after
    // it fails.
    REQUIRE(raw_connect(fds[0], listener->port()));
    REQUIRE(log.wait_for("accepting again every", 10s));
    // The kernel completes this one; it waits for an accept.
    REQUIRE(raw_connect(fds[1], listener->port()));
  }
  REQUIRE(log.wait_for("direct links: accepting again", 10s));
  for (int fd : fds) {
    raw_send(fd, direct::encode_hello(node_id{1}));
    raw_send(fd, direct::encode_frame(sample_batch()));
  }
  int got = 0;
  for (int i = 0; i < 2; ++i)
    server->receive(
      [&](std::vector<envelope>& b) { got += b == sample_batch() ? 1 : 0; },
      caf::after(10s) >> [] {});
  CHECK(got == 2);
  for (int fd : fds)
    ::close(fd);
}

TEST_CASE_FIXTURE(link_fixture,
                  "client link: calls reach the server with a sink that "
                  "writes the answers back; other messages go to the "
                  "fallback; the link ends with the server's listener") {
  caf::scoped_actor client{sys};
  auto link = dial_client(client, 5);
  auto as_server = caf::actor_cast<server_actor>(link->handle());

  auto calls = sample_calls();
  for (int round = 0; round < 3; ++round) {
    // The sink sent along is the client's own; the server gets the link's.
    caf::anon_send(as_server, atom::client_v, atom::calls_v, calls,
                   caf::actor_cast<client_sink_actor>(client));
    client_sink_actor sink;
    server->receive(
      [&](atom::client, atom::calls, std::vector<client_call>& got,
          client_sink_actor& s) {
        CHECK(got == calls);
        sink = s;
      },
      caf::after(5s) >> [] {});
    REQUIRE(sink);
    CHECK(sink_name(sink) == "direct_link");
    caf::anon_send(sink, atom::answers_v, sample_answers());
    bool answered = false;
    client->receive(
      [&](atom::answers, std::vector<client_answer>& got) {
        CHECK(got == sample_answers());
        answered = true;
      },
      caf::after(5s) >> [] {});
    CHECK(answered);
  }
  // Anything else goes to BASP.
  caf::anon_send(as_server, atom::direct_port_v);
  bool asked = false;
  fallback->receive([&](atom::direct_port) { asked = true; },
                    caf::after(5s) >> [] {});
  CHECK(asked);

  // The server side closes: the reader sees the end and terminates the
  // handle, whose monitors learn it without sending anything.
  listener.reset();
  bool down = false;
  watcher->receive([&](caf::down_msg&) { down = true; },
                   caf::after(10s) >> [] {});
  CHECK(down);
}

TEST_CASE_FIXTURE(link_fixture,
                  "client link: what the server's side cannot frame (an "
                  "answer too big) breaks the link, so that the client "
                  "retries over BASP instead of waiting for it") {
  caf::scoped_actor client{sys};
  auto link = dial_client(client, 6);
  caf::anon_send(caf::actor_cast<server_actor>(link->handle()), atom::client_v,
                 atom::calls_v, sample_calls(),
                 caf::actor_cast<client_sink_actor>(client));
  caf::actor sink;
  server->receive(
    [&](atom::client, atom::calls, std::vector<client_call>&,
        client_sink_actor& s) { sink = caf::actor_cast<caf::actor>(s); },
    caf::after(5s) >> [] {});
  REQUIRE(sink);
  caf::anon_send(sink, atom::direct_port_v); // Has no answers frame.
  bool down = false;
  watcher->receive([&](caf::down_msg&) { down = true; },
                   caf::after(10s) >> [] {});
  CHECK(down);
  CHECK(client->mailbox().empty());
}

TEST_CASE_FIXTURE(link_fixture, "client link listener: a malformed calls "
                                "frame closes the connection and delivers "
                                "nothing more") {
  auto good = direct::encode_frame(sample_calls());
  // An envelope batch is no batch of calls.
  auto wrong_type = direct::encode_frame(sample_batch());
  CHECK(closed_after(listener->port(),
                     {direct::encode_client_hello(1), good, wrong_type, good}));
  CHECK(count_waiting<atom::client, atom::calls, std::vector<client_call>,
                      client_sink_actor>(server)
        == 1);
}

/// A `calls_server` published over BASP with a direct-link listener, and a
/// client of it.
struct calls_fixture {
  real_system rs;
  caf::scoped_actor observer{rs.sys};
  caf::actor srv
    = rs.sys.spawn(calls_server, caf::actor_cast<caf::actor>(observer));
  // Ends the server however the test ends (the system waits for it).
  std::shared_ptr<void> stop_srv{nullptr, [srv = srv](void*) {
                                   caf::anon_send_exit(
                                     srv, caf::exit_reason::user_shutdown);
                                 }};
  std::unique_ptr<direct::listener> listener;
  std::unique_ptr<cluster::client> client;

  calls_fixture() {
    auto basp_port = rs.sys.middleman().publish(srv, 0, "127.0.0.1");
    REQUIRE(basp_port);
    auto l = direct::listener::start("127.0.0.1", node_id{1},
                                     caf::actor_cast<server_actor>(srv));
    REQUIRE(l);
    listener = std::move(*l);
    caf::anon_send(srv, atom::configure_v, listener->port());
    cluster::client_options opts;
    opts.endpoints.push_back("127.0.0.1:" + std::to_string(*basp_port));
    // Long bounds: a lost call must be retried when the link breaks, not
    // when its attempt times out.
    opts.timeout = 60s;
    opts.attempt_timeout = 30s;
    client = std::make_unique<cluster::client>(rs.sys, opts);
  }

  /// Where the call with `payload` arrived: the server's sink names it.
  std::string arrived(const std::string& payload) {
    std::string via;
    for (int i = 0; i < 10 && via.empty(); ++i)
      observer->receive(
        [&](atom::calls, std::string& p, std::string& name) {
          if (p == payload)
            via = name;
        },
        caf::after(5s) >> [] {});
    return via;
  }

  /// Subscribes "owner-1" and reports whether the server got the
  /// subscription (it acknowledges it only on atom::flush).
  bool subscribe_unacknowledged() {
    client->subscribe(group_id{1}, "owner-1", [](const std::string&) {});
    bool subscribing = false;
    observer->receive(
      [&](atom::subscribe, std::string& owner) {
        subscribing = owner == "owner-1";
      },
      caf::after(5s) >> [] {});
    return subscribing;
  }

  /// Submits calls until one arrives over the direct link (the first ones
  /// go over CAF while the link is being dialed, which a loaded machine may
  /// take a while to do, and a failed dial is retried after a second),
  /// for at most 10 s; `prefix` names them.
  bool until_direct(const std::string& prefix) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
      auto payload = prefix + std::to_string(i);
      auto res = client->submit(group_id{1}, payload);
      REQUIRE_MESSAGE(res.ok, res.error);
      CHECK(res.value == payload);
      if (arrived(payload) == "direct_link")
        return true;
    }
    return false;
  }
};

TEST_CASE_FIXTURE(calls_fixture,
                  "a client sends its calls over the server's direct link, "
                  "over CAF while a subscription is unacknowledged (a call "
                  "must not overtake it), and retries the calls a broken "
                  "link carried over CAF") {
  auto& c = *client;
  REQUIRE(until_direct("p"));

  // A subscription goes over CAF; until the server acknowledged it, calls
  // do too (the grant a call causes must find the subscription).
  REQUIRE(subscribe_unacknowledged());
  auto res = c.submit(group_id{1}, "while-subscribing");
  REQUIRE_MESSAGE(res.ok, res.error);
  CHECK(arrived("while-subscribing") == "ees.client");
  caf::anon_send(srv, atom::flush_v);
  CHECK(until_direct("s"));

  // A call in flight on the link when it breaks is retried over CAF.
  auto held = std::make_shared<std::promise<cluster::client_result>>();
  auto result = held->get_future();
  c.submit_async(group_id{1}, "hold-once", [held](cluster::client_result r) {
    held->set_value(std::move(r));
  });
  REQUIRE(arrived("hold-once") == "direct_link");
  listener.reset();
  // Retried when the link broke: long before the attempt's bound of 30 s.
  REQUIRE(result.wait_for(15s) == std::future_status::ready);
  auto second = arrived("hold-once");
  CHECK(second != "");
  CHECK(second != "direct_link");
  res = result.get();
  CHECK_MESSAGE(res.ok, res.error);
  CHECK(res.attempts == 2);
}

/// A listening socket of the test's own (`raw_listener`) for a link to
/// dial, and a scoped actor for the link's fallback.
struct raw_peer_fixture : real_system {
  caf::scoped_actor fallback{sys};
  std::uint16_t port = 0;
  int lfd = raw_listener(port);

  ~raw_peer_fixture() {
    ::close(lfd);
  }
};

TEST_CASE_FIXTURE(raw_peer_fixture,
                  "direct link: a peer that reads nothing breaks the link as "
                  "soon as more than max_backlog waits, without waiting out "
                  "the stall limit") {
  caf::scoped_actor watcher{sys};
  auto dialed = direct::dial(sys, node_id{1}, "127.0.0.1", port, 1000ms,
                             caf::actor_cast<caf::actor>(fallback));
  REQUIRE(dialed);
  int fd = raw_accept(lfd); // Never read.
  REQUIRE(fd >= 0);
  watcher->monitor(*dialed);
  auto link = caf::actor_cast<peer_actor>(*dialed);
  auto batch = sample_batch();
  batch[0].msg.entries[0].data = std::string(1u << 20, 'b');
  // Twice what the socket buffers and the backlog hold.
  for (std::size_t i = 0; i < 2 * (direct::max_backlog >> 20) + 16; ++i)
    caf::anon_send(link, batch);
  bool down = false;
  watcher->receive([&](caf::down_msg&) { down = true; },
                   caf::after(direct::drain_stall_limit / 2) >> [] {});
  CHECK(down);
  ::close(fd);
}

TEST_CASE_FIXTURE(raw_peer_fixture,
                  "client link: a frame the socket did not take at once is "
                  "sent in full, though nothing is sent after it") {
  caf::scoped_actor client{sys};
  auto dialed = direct::client_link::dial(
    sys, 5, "127.0.0.1", port, 1000ms, caf::actor_cast<caf::actor>(fallback),
    caf::actor_cast<client_sink_actor>(client));
  REQUIRE(dialed);
  int fd = raw_accept(lfd);
  REQUIRE(fd >= 0);
  CHECK(raw_read(fd, direct::hello_size) == direct::encode_client_hello(5));
  // More than the sender's socket buffer (tcp_wmem's maximum) and the
  // receiver's 64 KiB take, by less than a link's backlog may hold.
  std::size_t wmem_max = 4u << 20;
  {
    std::ifstream in{"/proc/sys/net/ipv4/tcp_wmem"};
    std::size_t lo = 0;
    std::size_t def = 0;
    in >> lo >> def >> wmem_max;
  }
  auto size
    = std::min<std::size_t>(wmem_max + (4u << 20), direct::max_backlog - 1024);
  REQUIRE(size > wmem_max + (64u << 10));
  std::vector<client_call> calls{
    client_call{1, group_id{1}, false, 0, std::string(size, 'x')}};
  auto frame = direct::encode_frame(calls);
  caf::anon_send(caf::actor_cast<server_actor>((*dialed)->handle()),
                 atom::client_v, atom::calls_v, calls,
                 caf::actor_cast<client_sink_actor>(client));
  // The send wrote what the socket took; the rest must follow without
  // another send.
  auto got = raw_read(fd, frame.size());
  CHECK(got.size() == frame.size());
  CHECK(got == frame);
  ::close(fd);
}

TEST_CASE_FIXTURE(calls_fixture,
                  "a client retries only the calls a broken direct link "
                  "carried, and dials a server whose links keep breaking "
                  "less and less often") {
  auto& c = *client;
  REQUIRE(until_direct("p"));

  // A call over CAF (a subscription is pending) waits for its answer while
  // the link breaks.
  REQUIRE(subscribe_unacknowledged());
  auto result = std::make_shared<std::promise<cluster::client_result>>();
  auto held = result->get_future();
  c.submit_async(group_id{1}, "held", [result](cluster::client_result r) {
    result->set_value(std::move(r));
  });
  REQUIRE(arrived("held") == "ees.client");
  // The next dial goes to a listener of the test's: its accept shows that
  // the client handled the broken link (and waited to dial again).
  std::uint16_t raw_port = 0;
  int lfd = raw_listener(raw_port);
  caf::anon_send(srv, atom::configure_v, raw_port);
  listener.reset();
  int first = raw_accept(lfd);
  REQUIRE(first >= 0);
  caf::anon_send(srv, atom::flush_v);
  REQUIRE(held.wait_for(30s) == std::future_status::ready);
  auto res = held.get();
  CHECK_MESSAGE(res.ok, res.error);
  // Not retried: its answer came over CAF, where it was sent.
  CHECK(res.attempts == 1);

  // This link breaks at once too: the next dial waits twice as long.
  auto closed_at = std::chrono::steady_clock::now();
  ::close(first);
  int second = raw_accept(lfd);
  REQUIRE(second >= 0);
  CHECK(std::chrono::steady_clock::now() - closed_at >= 1900ms);
  ::close(second);
  ::close(lfd);
}
