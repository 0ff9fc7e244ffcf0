#include "actors/direct_link.hpp"

#include "actors/type_ids.hpp"

#include <caf/actor_cast.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_actor.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
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

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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

/// The handle `dial` returns: an actor without a mailbox whose enqueue
/// writes batches to the socket on the caller's thread (a CAF worker of the
/// server, or the storage thread sending acknowledgements after a write).
class link_actor final : public caf::monitorable_actor {
public:
  link_actor(caf::actor_config& cfg, int fd, caf::actor fallback)
    : caf::monitorable_actor(cfg), fd_(fd), fallback_(std::move(fallback)) {}

  ~link_actor() override {
    ::close(fd_);
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
    std::vector<char> frame;
    if (content.match_elements<std::vector<envelope>>())
      frame = encode_frame(content.get_as<std::vector<envelope>>(0));
    else if (content.match_elements<envelope>())
      frame = encode_frame({content.get_as<envelope>(0)});
    if (frame.empty()) {
      // Not a batch, or too big for a frame: BASP carries it.
      if (fallback_)
        fallback_->enqueue(std::move(what), host);
      return;
    }
    if (!write(frame))
      terminate(caf::make_error(caf::sec::socket_disconnected,
                                "direct link to peer broke"),
                host);
  }

private:
  /// Writes the frame without blocking, after what earlier sends left
  /// behind. False once the connection is broken or the backlog overflows.
  bool write(const std::vector<char>& frame) {
    std::lock_guard<std::mutex> guard{write_mtx_};
    if (broken_)
      return true; // Terminated already; the message is dropped.
    if (!backlog_.empty()) {
      auto sent = send_from(backlog_.data(), backlog_.size());
      if (!sent)
        return false;
      backlog_.erase(backlog_.begin(),
                     backlog_.begin() + static_cast<std::ptrdiff_t>(*sent));
    }
    std::size_t sent = 0;
    if (backlog_.empty()) {
      auto n = send_from(frame.data(), frame.size());
      if (!n)
        return false;
      sent = *n;
    }
    backlog_.insert(backlog_.end(),
                    frame.begin() + static_cast<std::ptrdiff_t>(sent),
                    frame.end());
    return backlog_.size() <= max_backlog;
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
      ::shutdown(fd_, SHUT_RDWR);
    }
    cleanup(std::move(reason), host);
  }

  std::mutex write_mtx_;
  int fd_;
  std::vector<char> backlog_;
  bool broken_ = false;
  caf::actor fallback_;
};

} // namespace

std::vector<char> encode_frame(const std::vector<envelope>& batch) {
  std::vector<char> buf(4);
  caf::binary_serializer sink{nullptr, buf};
  // CAF 0.17's inspectors take non-const references; saving reads only.
  if (auto err = sink(const_cast<std::vector<envelope>&>(batch)))
    return {};
  auto payload = buf.size() - 4;
  if (payload > max_payload)
    return {};
  set_le(buf.data(), payload, 4);
  return buf;
}

caf::expected<std::vector<envelope>> decode_payload(const char* data,
                                                    std::size_t size) {
  std::vector<envelope> batch;
  caf::binary_deserializer source{nullptr, data, size};
  if (auto err = source(batch))
    return err;
  if (source.remaining() != 0)
    return caf::make_error(caf::sec::invalid_argument,
                           std::to_string(source.remaining())
                             + " bytes after the batch");
  return batch;
}

std::vector<char> encode_hello(node_id self) {
  std::vector<char> out;
  put_le(out, hello_magic, 4);
  put_le(out, wire_version, 2);
  put_le(out, self.value, 8);
  return out;
}

std::optional<node_id> decode_hello(const char* data) {
  if (get_le(data, 4) != hello_magic || get_le(data + 4, 2) != wire_version)
    return std::nullopt;
  return node_id{get_le(data + 6, 8)};
}

// -- listener -----------------------------------------------------------------

caf::expected<std::unique_ptr<listener>>
listener::start(const std::string& host, node_id self, peer_actor server) {
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

listener::listener(int fd, std::uint16_t port, node_id self, peer_actor server)
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
  for (;;) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_) {
      if (fd >= 0)
        ::close(fd);
      return;
    }
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      // Peers fall back to BASP when they cannot connect.
      spdlog::error("n={} direct links: {}; peers use BASP", self_.value,
                    errno_text("accept"));
      return;
    }
    reap();
    if (connections_.size() >= max_connections) {
      spdlog::warn("n={} direct links: {} connections open, refusing one more",
                   self_.value, connections_.size());
      ::close(fd);
      continue;
    }
    set_nodelay(fd);
    connection c;
    c.fd = fd;
    c.done = std::make_shared<std::atomic<bool>>(false);
    c.reader = std::thread{[this, fd, done = c.done] {
      read_loop(fd);
      // The dialer sees the end of the stream, whatever ended the loop.
      ::shutdown(fd, SHUT_RDWR);
      done->store(true);
    }};
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
  char hello[hello_size];
  if (!read_exact(fd, hello, hello_size))
    return;
  auto from = decode_hello(hello);
  if (!from) {
    spdlog::warn("n={} direct link: bad hello, connection closed", self_.value);
    return;
  }
  set_read_timeout(fd, std::chrono::seconds{0});
  std::vector<char> payload;
  for (;;) {
    char header[4];
    if (!read_exact(fd, header, 4))
      break;
    auto size = static_cast<std::uint32_t>(get_le(header, 4));
    if (size > max_payload) {
      spdlog::warn("n={} direct link from {}: frame of {} bytes (at most {}), "
                   "connection closed",
                   self_.value, from->value, size, max_payload);
      break;
    }
    payload.resize(size);
    if (!read_exact(fd, payload.data(), size))
      break;
    auto batch = decode_payload(payload.data(), size);
    if (!batch) {
      spdlog::warn("n={} direct link from {}: malformed frame ({}), "
                   "connection closed",
                   self_.value, from->value, caf::to_string(batch.error()));
      break;
    }
    caf::anon_send(server_, std::move(*batch));
  }
}

// -- dial ---------------------------------------------------------------------

caf::expected<caf::actor> dial(caf::actor_system& sys, node_id self,
                               const std::string& host, std::uint16_t port,
                               std::chrono::milliseconds timeout,
                               caf::actor fallback) {
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
  set_nodelay(fd);
  auto hello = encode_hello(self);
  // An empty socket buffer takes 14 bytes at once.
  if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL)
      != static_cast<ssize_t>(hello.size()))
    return fail(errno_text("send hello"));
  caf::actor_config cfg;
  auto ptr = caf::make_actor<link_actor, caf::strong_actor_ptr>(
    sys.next_actor_id(), sys.node(), &sys, cfg, fd, std::move(fallback));
  return caf::actor_cast<caf::actor>(std::move(ptr));
}

} // namespace ees::actors::direct
