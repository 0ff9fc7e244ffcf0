#include "actors/direct_link.hpp"

#include "actors/type_ids.hpp"

#include <caf/actor_cast.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_actor.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <system_error>
#include <unistd.h>

namespace ees::actors::direct {

namespace {

/// Writes the low `bytes` bytes of `v` little-endian at `p`.
void set_le(char* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

void put_le(std::vector<char>& out, std::uint64_t v, int bytes) {
  out.resize(out.size() + static_cast<std::size_t>(bytes));
  set_le(out.data() + out.size() - bytes, v, bytes);
}

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

/// Reads exactly `n` bytes; false at end of stream or on an error.
bool read_exact(int fd, char* out, std::size_t n) {
  while (n > 0) {
    auto got = ::recv(fd, out, n, 0);
    if (got > 0) {
      out += got;
      n -= static_cast<std::size_t>(got);
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

/// Bounds each blocking read on `fd` (0: no bound).
void set_read_timeout(int fd, std::chrono::seconds t) {
  timeval tv{static_cast<time_t>(t.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/// TCP_NODELAY, TCP keepalive probes and a user timeout: a reader blocked
/// on a peer that vanished without a FIN (host down, partition) learns it
/// within about 30 s instead of holding its thread and connection slot
/// forever, whether the connection was idle (keepalive) or had data
/// unacknowledged (no probes are sent then; the user timeout ends it).
void tune_socket(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  int idle = 10;
  int interval = 2;
  int count = 5;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  unsigned int user_timeout_ms = 30000;
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
               sizeof(user_timeout_ms));
}

using addrinfo_ptr = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

caf::expected<addrinfo_ptr> resolve(const std::string& host, std::uint16_t port,
                                    bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  auto service = std::to_string(port);
  if (auto rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
      rc != 0 || res == nullptr)
    return caf::make_error(caf::sec::cannot_connect_to_node,
                           "cannot resolve " + host + ": " + gai_strerror(rc));
  return addrinfo_ptr{res, &::freeaddrinfo};
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

/// The frame a link writes for `msg`; empty for a message it does not
/// carry (or one too big for a frame).
using frame_fn = std::vector<char> (*)(caf::type_erased_tuple& msg);

/// Peer links: a batch of envelopes, or one envelope as a batch of one.
std::vector<char> peer_frame(caf::type_erased_tuple& msg) {
  if (msg.match_elements<std::vector<envelope>>())
    return encode_frame(msg.get_as<std::vector<envelope>>(0));
  if (msg.match_elements<envelope>())
    return encode_frame(std::vector<envelope>{msg.get_as<envelope>(0)});
  return {};
}

/// A client's link: its batched calls (the sink is the connection).
std::vector<char> calls_frame(caf::type_erased_tuple& msg) {
  if (msg.match_elements<atom::client, atom::calls, std::vector<client_call>,
                         client_sink_actor>())
    return encode_frame(msg.get_as<std::vector<client_call>>(2));
  return {};
}

/// The server's side of a client's connection: the answers to its calls.
std::vector<char> answers_frame(caf::type_erased_tuple& msg) {
  if (msg.match_elements<atom::answers, std::vector<client_answer>>())
    return encode_frame(msg.get_as<std::vector<client_answer>>(1));
  return {};
}

/// The drain timer of a link: (atom::flush) arms it, and when the timer
/// fires the actor sends the link (atom::flush) from its worker, which
/// drains the link there. The link arms it at most once at a time
/// (`drain_scheduled_`). CAF's clock thread must never run a link's drain
/// itself: a drain re-arms the timer, and a push into the clock's bounded
/// queue from the queue's only consumer blocks for good once the queue is
/// full. Holds the link weakly: the link owns it.
caf::behavior drain_timer(caf::event_based_actor* self,
                          caf::weak_actor_ptr link) {
  return {
    [self](atom::flush) {
      self->delayed_send(self, drain_interval, atom::tick_v);
    },
    [link](atom::tick) {
      if (auto strong = link.lock())
        caf::anon_send(caf::actor_cast<caf::actor>(strong), atom::flush_v);
    },
  };
}

/// The handle of a link: an actor without a mailbox whose enqueue writes
/// the frame of what it is sent to the socket on the caller's thread (a CAF
/// worker, or the storage thread sending acknowledgements after a write).
/// What has no frame goes to `fallback` (dropped when it is null).
class link_actor final : public caf::monitorable_actor {
public:
  /// Closes `fd` when destroyed if `owns_fd`; else its owner closes it
  /// after this link terminated (no system call touches it after that).
  link_actor(caf::actor_config& cfg, int fd, bool owns_fd, frame_fn frame,
             caf::actor fallback)
    : caf::monitorable_actor(cfg), fd_(fd), owns_fd_(owns_fd), frame_(frame),
      fallback_(std::move(fallback)) {}

  ~link_actor() override {
    caf::anon_send_exit(timer_, caf::exit_reason::user_shutdown);
    if (owns_fd_)
      ::close(fd_);
  }

  /// Set once, before anyone else has the link (make_link).
  void set_timer(caf::actor timer) {
    timer_ = std::move(timer);
  }

  const char* name() const override {
    return "direct_link";
  }

  void enqueue(caf::mailbox_element_ptr what,
               caf::execution_unit* host) override {
    auto& content = what->content();
    if (content.match_elements<caf::exit_msg>()) {
      terminate(content.get_as<caf::exit_msg>(0).reason, host);
      return;
    }
    if (content.match_elements<atom::flush>()) {
      // Its drain timer (actors only ever send atom::flush to themselves or
      // to their drain timer, never to a peer or a client).
      drain(host);
      return;
    }
    auto frame = frame_(content);
    // Not for this link, too big for a frame, or bigger than the backlog
    // may grow (a snapshot for a follower, tens of MB, would break the
    // link it was written on): BASP carries it.
    if (frame.empty() || (fallback_ && frame.size() > max_backlog)) {
      if (fallback_) {
        fallback_->enqueue(std::move(what), host);
        return;
      }
      // A server's side of a client link (answers too big for a frame):
      // breaking the link makes the client retry over BASP instead of
      // waiting out its bound for an answer that was dropped.
      terminate(caf::make_error(caf::sec::unexpected_message,
                                "message without a direct-link frame"),
                host);
      return;
    }
    bool schedule = false;
    if (!write(frame, schedule))
      terminate(caf::make_error(caf::sec::socket_disconnected,
                                "direct link to peer broke"),
                host);
#ifndef EES_MUTANT_NO_DRAIN
    else if (schedule)
      caf::anon_send(timer_, atom::flush_v);
#endif // Mutant: the rest waits for the next send.
  }

private:
  /// Writes the frame without blocking, after what earlier sends left
  /// behind. False once the connection is broken or the backlog overflows;
  /// sets `schedule` when a drain must be scheduled for what is left.
  bool write(const std::vector<char>& frame, bool& schedule) {
    std::lock_guard<std::mutex> guard{write_mtx_};
    if (broken_)
      return true; // Terminated already; the message is dropped.
    if (!send_backlog())
      return false;
    std::size_t sent = 0;
    if (pending() == 0) {
      auto n = send_from(frame.data(), frame.size());
      if (!n)
        return false;
      sent = *n;
      if (sent < frame.size())
        last_progress_ = std::chrono::steady_clock::now();
    }
    backlog_.insert(backlog_.end(),
                    frame.begin() + static_cast<std::ptrdiff_t>(sent),
                    frame.end());
    schedule = pending() > 0 && !drain_scheduled_;
    drain_scheduled_ = drain_scheduled_ || schedule;
    return pending() <= max_backlog;
  }

  /// Bytes of the backlog not sent yet (the caller holds write_mtx_).
  std::size_t pending() const {
    return backlog_.size() - sent_;
  }

  /// Sends what the socket takes of the backlog (the caller holds
  /// write_mtx_); false once the connection is broken. Sent bytes are
  /// dropped from the buffer's front only in steps of `read_chunk`: moving
  /// up to `max_backlog` bytes for every few kilobytes sent would cost more
  /// than the sending.
  bool send_backlog() {
    if (pending() == 0)
      return true;
    auto sent = send_from(backlog_.data() + sent_, pending());
    if (!sent)
      return false;
    if (*sent > 0)
      last_progress_ = std::chrono::steady_clock::now();
    sent_ += *sent;
    if (sent_ == backlog_.size()) {
      backlog_.clear();
      sent_ = 0;
    } else if (sent_ >= read_chunk) {
      backlog_.erase(backlog_.begin(),
                     backlog_.begin() + static_cast<std::ptrdiff_t>(sent_));
      sent_ = 0;
    }
    return true;
  }

  /// A scheduled drain: a frame the socket did not take must not wait for
  /// the next send, which may never come (a client's last call, the answer
  /// to it). Breaks the link when the peer took nothing for
  /// `drain_stall_limit`.
  void drain(caf::execution_unit* host) {
    bool again = false;
    bool stalled = false;
    bool ok = true;
    {
      std::lock_guard<std::mutex> guard{write_mtx_};
      drain_scheduled_ = false;
      if (broken_)
        return;
      ok = send_backlog();
      stalled = ok && pending() > 0
                && std::chrono::steady_clock::now() - last_progress_
                     > drain_stall_limit;
      again = ok && !stalled && pending() > 0;
      drain_scheduled_ = again;
    }
    if (!ok || stalled)
      terminate(caf::make_error(caf::sec::socket_disconnected,
                                stalled ? "direct link stalled"
                                        : "direct link to peer broke"),
                host);
    else if (again)
      caf::anon_send(timer_, atom::flush_v);
  }

  /// Sends what the socket takes of `size` bytes at `data` now: how many
  /// it took, nullopt if the connection is broken.
  std::optional<std::size_t> send_from(const char* data, std::size_t size) {
    std::size_t sent = 0;
    while (sent < size) {
      auto n
        = ::send(fd_, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0)
        sent += static_cast<std::size_t>(n);
      else if (n < 0 && errno == EINTR)
        continue;
      else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      else
        return std::nullopt;
    }
    return sent;
  }

  void terminate(caf::error reason, caf::execution_unit* host) {
    {
      std::lock_guard<std::mutex> guard{write_mtx_};
      if (broken_)
        return;
      broken_ = true;
      backlog_.clear();
      sent_ = 0;
      ::shutdown(fd_, SHUT_RDWR);
    }
    caf::anon_send_exit(timer_, caf::exit_reason::user_shutdown);
    cleanup(std::move(reason), host);
  }

  std::mutex write_mtx_;
  int fd_;
  bool owns_fd_;
  frame_fn frame_;
  std::vector<char> backlog_;
  /// Bytes at the front of `backlog_` sent already.
  std::size_t sent_ = 0;
  /// When the socket last took bytes of a backlog.
  std::chrono::steady_clock::time_point last_progress_;
  bool drain_scheduled_ = false;
  bool broken_ = false;
  caf::actor fallback_;
  caf::actor timer_;
};

caf::actor make_link(caf::actor_system& sys, int fd, bool owns_fd,
                     frame_fn frame, caf::actor fallback) {
  caf::actor_config cfg;
  auto ptr = caf::make_actor<link_actor, caf::strong_actor_ptr>(
    sys.next_actor_id(), sys.node(), &sys, cfg, fd, owns_fd, frame,
    std::move(fallback));
  auto* link
    = static_cast<link_actor*>(caf::actor_cast<caf::abstract_actor*>(ptr));
  link->set_timer(
    sys.spawn(drain_timer, caf::actor_cast<caf::weak_actor_ptr>(ptr)));
  return caf::actor_cast<caf::actor>(std::move(ptr));
}

/// Reads frames from `fd` until the stream ends, a frame is oversize or
/// `deliver(payload, size)` returns false (a malformed frame); `who` names
/// the connection in warnings.
template <class Deliver>
void read_frames(int fd, const std::string& who, Deliver deliver) {
  std::vector<char> payload;
  for (;;) {
    char header[4];
    if (!read_exact(fd, header, 4))
      return;
    auto size = static_cast<std::uint32_t>(get_le(header, 4));
    if (size > max_payload) {
      spdlog::warn("{}: frame of {} bytes (at most {}), connection closed", who,
                   size, max_payload);
      return;
    }
    // Grown as the bytes arrive: a length prefix alone must not make the
    // reader hold max_payload bytes.
    payload.clear();
    while (payload.size() < size) {
      auto have = payload.size();
      auto chunk = std::min<std::size_t>(size - have, read_chunk);
      payload.resize(have + chunk);
      if (!read_exact(fd, payload.data() + have, chunk))
        return;
    }
    if (!deliver(payload.data(), size))
      return;
    if (payload.capacity() > read_chunk)
      std::vector<char>{}.swap(payload); // Not kept for the connection's life.
  }
}

/// Decodes one payload as `Batch`, warning about (and refusing) a
/// malformed one.
template <class Batch>
std::optional<Batch> decode_or_warn(const std::string& who, const char* data,
                                    std::size_t size) {
  auto batch = decode_payload<Batch>(data, size);
  if (!batch) {
    spdlog::warn("{}: malformed frame ({}), connection closed", who,
                 caf::to_string(batch.error()));
    return std::nullopt;
  }
  return std::move(*batch);
}

/// Connects to host:port within `timeout` and sends `hello`; the socket is
/// non-blocking, with TCP_NODELAY.
caf::expected<int> connect_to(const std::string& host, std::uint16_t port,
                              std::chrono::milliseconds timeout,
                              const std::vector<char>& hello) {
  auto addrs = resolve(host, port, false);
  if (!addrs)
    return addrs.error();
  auto* a = addrs->get();
  int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    a->ai_protocol);
  if (fd < 0)
    return caf::make_error(caf::sec::cannot_connect_to_node,
                           errno_text("socket"));
  auto fail = [fd](std::string what) {
    ::close(fd);
    return caf::make_error(caf::sec::cannot_connect_to_node, std::move(what));
  };
  if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
    if (errno != EINPROGRESS)
      return fail(errno_text("connect"));
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1)
      return fail("connect: timed out");
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      return fail(errno_text("connect"));
    }
  }
  tune_socket(fd);
  // An empty socket buffer takes 14 bytes at once.
  if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL)
      != static_cast<ssize_t>(hello.size()))
    return fail(errno_text("send hello"));
  return fd;
}

} // namespace

template <class Batch>
std::vector<char> encode_frame(const Batch& batch) {
  std::vector<char> buf(4);
  caf::binary_serializer sink{nullptr, buf};
  // CAF 0.17's inspectors take non-const references; saving reads only.
  if (auto err = sink(const_cast<Batch&>(batch)))
    return {};
  auto payload = buf.size() - 4;
  if (payload > max_payload)
    return {};
  set_le(buf.data(), payload, 4);
  return buf;
}

template <class Batch>
caf::expected<Batch> decode_payload(const char* data, std::size_t size) {
  Batch batch;
  caf::binary_deserializer source{nullptr, data, size};
  if (auto err = source(batch))
    return err;
  if (source.remaining() != 0)
    return caf::make_error(caf::sec::invalid_argument,
                           std::to_string(source.remaining())
                             + " bytes after the batch");
  return batch;
}

#define EES_DIRECT_BATCH(Batch)                                 \
  template std::vector<char> encode_frame<Batch>(const Batch&); \
  template caf::expected<Batch> decode_payload<Batch>(const char*, std::size_t);
EES_DIRECT_BATCH(std::vector<envelope>)
EES_DIRECT_BATCH(std::vector<client_call>)
EES_DIRECT_BATCH(std::vector<client_answer>)
#undef EES_DIRECT_BATCH

namespace {

std::vector<char> make_hello(std::uint32_t magic, std::uint64_t id) {
  std::vector<char> out;
  put_le(out, magic, 4);
  put_le(out, wire_version, 2);
  put_le(out, id, 8);
  return out;
}

} // namespace

std::vector<char> encode_hello(node_id self) {
  return make_hello(hello_magic, self.value);
}

std::vector<char> encode_client_hello(std::uint64_t tag) {
  return make_hello(client_magic, tag);
}

std::optional<hello> decode_hello(const char* data) {
  auto magic = get_le(data, 4);
  if ((magic != hello_magic && magic != client_magic)
      || get_le(data + 4, 2) != wire_version)
    return std::nullopt;
  return hello{magic == client_magic, get_le(data + 6, 8)};
}

// -- listener -----------------------------------------------------------------

caf::expected<std::unique_ptr<listener>>
listener::start(const std::string& host, node_id self, server_actor server) {
  auto addrs = resolve(host, 0, true);
  if (!addrs)
    return addrs.error();
  auto* a = addrs->get();
  int fd
    = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
  if (fd < 0)
    return caf::make_error(caf::sec::cannot_open_port, errno_text("socket"));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
    auto err = errno_text("bind/listen on " + host);
    ::close(fd);
    return caf::make_error(caf::sec::cannot_open_port, err);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  auto port = bound.ss_family == AF_INET6
                ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<listener>{
    new listener(fd, port, self, std::move(server))};
}

listener::listener(int fd, std::uint16_t port, node_id self,
                   server_actor server)
  : fd_(fd), port_(port), self_(self), server_(std::move(server)) {
  acceptor_ = std::thread{[this] {
    accept_loop();
  }};
}

listener::~listener() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  stopped_.notify_all();
  // Linux: shutdown of a listening socket wakes a blocked accept().
  ::shutdown(fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(fd_);
  for (auto& c : connections_)
    ::shutdown(c.fd, SHUT_RDWR);
  for (auto& c : connections_) {
    c.reader.join();
    ::close(c.fd);
  }
}

void listener::accept_loop() {
  pthread_setname_np(pthread_self(), "ees.link.accept");
  bool failing = false;
  for (;;) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    int error = fd < 0 ? errno : 0;
    std::unique_lock<std::mutex> guard{mtx_};
    if (stopping_) {
      if (fd >= 0)
        ::close(fd);
      return;
    }
    if (fd < 0) {
      errno = error; // For errno_text.
      if (error == EINTR || error == ECONNABORTED)
        continue;
      if (error == EBADF || error == EINVAL || error == ENOTSOCK) {
        // The listening socket itself is unusable: peers use BASP.
        spdlog::error("n={} direct links: {}; peers use BASP", self_.value,
                      errno_text("accept"));
        return;
      }
      // Out of descriptors or memory (or a network error of the pending
      // connection): finished connections may free some; accepting again
      // at once would spin. Warned once per streak.
      if (!failing)
        spdlog::warn("n={} direct links: {}; accepting again every {} ms",
                     self_.value, errno_text("accept"), accept_retry.count());
      failing = true;
#ifdef EES_MUTANT_ACCEPT_GIVES_UP
      return;
#endif
      reap();
      stopped_.wait_for(guard, accept_retry, [this] { return stopping_; });
      continue;
    }
    if (failing)
      spdlog::info("n={} direct links: accepting again", self_.value);
    failing = false;
    reap();
    if (connections_.size() >= max_connections) {
      spdlog::warn("n={} direct links: {} connections open, refusing one more",
                   self_.value, connections_.size());
      ::close(fd);
      continue;
    }
    tune_socket(fd);
    connection c;
    c.fd = fd;
    c.done = std::make_shared<std::atomic<bool>>(false);
    try {
      c.reader = std::thread{[this, fd, done = c.done] {
        read_loop(fd);
        // The dialer sees the end of the stream, whatever ended the loop.
        ::shutdown(fd, SHUT_RDWR);
        done->store(true);
      }};
    } catch (const std::system_error& e) {
      spdlog::warn("n={} direct links: no thread for a connection ({}), "
                   "refusing it",
                   self_.value, e.what());
      ::close(fd);
      continue;
    }
    connections_.push_back(std::move(c));
  }
}

void listener::reap() {
  for (auto i = connections_.begin(); i != connections_.end();) {
    if (i->done->load()) {
      i->reader.join();
      ::close(i->fd);
      i = connections_.erase(i);
    } else {
      ++i;
    }
  }
}

void listener::read_loop(int fd) {
  pthread_setname_np(pthread_self(), "ees.link.read");
  // A connection that never says hello must not hold its thread forever.
  set_read_timeout(fd, hello_timeout);
  char bytes[hello_size];
  if (!read_exact(fd, bytes, hello_size))
    return;
  auto from = decode_hello(bytes);
  if (!from) {
    spdlog::warn("n={} direct link: bad hello, connection closed", self_.value);
    return;
  }
  set_read_timeout(fd, std::chrono::seconds{0});
  if (from->client) {
    read_calls(fd, from->id);
    return;
  }
  auto who = "n=" + std::to_string(self_.value) + " direct link from "
             + std::to_string(from->id);
  read_frames(fd, who, [&](const char* data, std::size_t size) {
    auto batch = decode_or_warn<std::vector<envelope>>(who, data, size);
    if (batch)
      caf::anon_send(caf::actor_cast<peer_actor>(server_), std::move(*batch));
    return batch.has_value();
  });
}

void listener::read_calls(int fd, std::uint64_t tag) {
  auto who = "n=" + std::to_string(self_.value) + " client link "
             + std::to_string(tag);
  // The answers go back on this connection, written by the server's thread;
  // the listener closes the socket only after the link terminated.
  auto& sys = *caf::actor_cast<caf::strong_actor_ptr>(server_)->home_system;
  auto link = make_link(sys, fd, false, answers_frame, nullptr);
  auto sink = caf::actor_cast<client_sink_actor>(link);
  spdlog::debug("{}: opened", who);
  read_frames(fd, who, [&](const char* data, std::size_t size) {
    auto calls = decode_or_warn<std::vector<client_call>>(who, data, size);
    if (calls)
      caf::anon_send(server_, atom::client_v, atom::calls_v, std::move(*calls),
                     sink);
    return calls.has_value();
  });
  caf::anon_send_exit(link, caf::exit_reason::user_shutdown);
  spdlog::debug("{}: closed", who);
}

// -- dial ---------------------------------------------------------------------

caf::expected<caf::actor> dial(caf::actor_system& sys, node_id self,
                               const std::string& host, std::uint16_t port,
                               std::chrono::milliseconds timeout,
                               caf::actor fallback) {
  auto fd = connect_to(host, port, timeout, encode_hello(self));
  if (!fd)
    return fd.error();
  return make_link(sys, *fd, true, peer_frame, std::move(fallback));
}

// -- client_link --------------------------------------------------------------

caf::expected<std::shared_ptr<client_link>>
client_link::dial(caf::actor_system& sys, std::uint64_t tag,
                  const std::string& host, std::uint16_t port,
                  std::chrono::milliseconds timeout, caf::actor fallback,
                  client_sink_actor sink) {
  auto fd = connect_to(host, port, timeout, encode_client_hello(tag));
  if (!fd)
    return fd.error();
  // The reader blocks in recv: the socket's non-blocking flag is shared by
  // both directions, so the link's writes use MSG_DONTWAIT instead.
  ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) & ~O_NONBLOCK);
  auto handle = make_link(sys, *fd, true, calls_frame, std::move(fallback));
  return std::shared_ptr<client_link>{
    new client_link(*fd, std::move(handle), std::move(sink))};
}

client_link::client_link(int fd, caf::actor handle, client_sink_actor sink)
  : handle_(std::move(handle)) {
  // The reader keeps the handle (and with it the socket) alive; it ends
  // when the connection does, and then terminates the handle so that its
  // monitors learn the link is gone.
  reader_ = std::thread{[fd, link = handle_, sink = std::move(sink)] {
    pthread_setname_np(pthread_self(), "ees.link.answers");
    read_frames(fd, "client link", [&](const char* data, std::size_t size) {
      auto answers
        = decode_or_warn<std::vector<client_answer>>("client link", data, size);
      if (answers)
        caf::anon_send(sink, atom::answers_v, std::move(*answers));
      return answers.has_value();
    });
    caf::anon_send_exit(link, caf::exit_reason::remote_link_unreachable);
  }};
}

client_link::~client_link() {
  // The exit shuts the socket down, which ends the reader's recv.
  caf::anon_send_exit(handle_, caf::exit_reason::user_shutdown);
  reader_.join();
}

} // namespace ees::actors::direct
