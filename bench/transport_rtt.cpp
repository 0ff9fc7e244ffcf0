// transport_rtt: what a message round trip between two processes costs
// with CAF's BASP middleman (what ees nodes and clients use today) and with
// a direct socket per peer (what a transport of our own would be), both
// with the scheduler settings of ees processes (apps::configure_scheduler).
//
// - basp: an actor requests an echo from a remote actor, one at a time:
//   worker -> middleman -> TCP -> middleman -> worker, and back.
// - direct: an actor writes 8 bytes to a TCP socket from its worker; in the
//   other process a reader thread blocked in recv() hands them to an echo
//   actor (anon_send), which writes them back from its worker; a reader
//   thread on this side hands the answer to the first actor. Two thread
//   hand-offs per direction instead of three.
// - raw: no actors at all: a thread writes 8 bytes and blocks in recv() for
//   the echo, which a thread in the other process blocked in recv() writes
//   back. One thread wake-up per direction: the floor of any transport
//   between two processes on this machine.
//
// The echo side runs in a child process (fork); it is stopped by its PID.
// Prints one JSON line: p50/p99 in microseconds per mode, and the ratio of
// direct to basp.
#include "apps/node_common.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;
constexpr int rounds = 20000;

void configure(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  ees::apps::configure_scheduler(cfg, 2);
}

int listen_loopback(std::uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || listen(fd, 1) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return -1;
  port = ntohs(a.sin_port);
  return fd;
}

void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A TCP connection to 127.0.0.1:port with TCP_NODELAY; -1 on failure.
int connect_loopback(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  no_delay(fd);
  return fd;
}

bool write_value(int fd, std::uint64_t x) {
  return ::send(fd, &x, sizeof x, MSG_NOSIGNAL) == sizeof x;
}

/// Reads 8-byte values from `fd` and hands each to `to` until EOF.
std::thread reader(int fd, caf::actor to) {
  return std::thread{[fd, to] {
    std::uint64_t x = 0;
    while (recv(fd, &x, sizeof x, MSG_WAITALL) == sizeof x)
      caf::anon_send(to, x);
  }};
}

/// The child: a BASP-published echo actor and a direct-socket echo.
[[noreturn]] void serve(int ports_out) {
  caf::actor_system_config cfg;
  configure(cfg);
  caf::actor_system sys{cfg};
  auto echo = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](std::uint64_t x) {
      return x;
    }};
  });
  auto basp_port = sys.middleman().publish(echo, 0, "127.0.0.1");
  std::uint16_t direct_port = 0;
  int ls = listen_loopback(direct_port);
  std::uint16_t raw_port = 0;
  int raw_ls = listen_loopback(raw_port);
  if (!basp_port || ls < 0 || raw_ls < 0)
    _exit(2);
  std::uint16_t ports[3] = {*basp_port, direct_port, raw_port};
  if (write(ports_out, ports, sizeof ports) != sizeof ports)
    _exit(2);
  std::thread raw_echo{[raw_ls] {
    int fd = accept(raw_ls, nullptr, nullptr);
    no_delay(fd);
    std::uint64_t x = 0;
    while (recv(fd, &x, sizeof x, MSG_WAITALL) == sizeof x)
      write_value(fd, x);
  }};
  raw_echo.detach(); // Ends with the process.
  int fd = accept(ls, nullptr, nullptr);
  no_delay(fd);
  auto direct_echo = sys.spawn([fd](caf::event_based_actor*) -> caf::behavior {
    return {[fd](std::uint64_t x) {
      write_value(fd, x);
    }};
  });
  auto t = reader(fd, direct_echo);
  t.join(); // Until the parent closes the connection (or kills us).
  _exit(0);
}

struct stats {
  double p50 = 0;
  double p99 = 0;
};

stats summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[v.size() * 99 / 100]};
}

/// Runs `rounds` sequential round trips driven by an actor: `start(self, i)`
/// sends round i; the actor's `uint64_t` handler sees each answer.
template <class Start>
std::vector<double> drive(caf::actor_system& sys, Start start) {
  auto rtts = std::make_shared<std::vector<double>>();
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto t0 = std::make_shared<steady::time_point>(steady::now());
    start(self, 0);
    return {[=](std::uint64_t i) {
      rtts->push_back(
        std::chrono::duration<double, std::micro>(steady::now() - *t0).count());
      if (i + 1 == rounds) {
        done->set_value();
        self->quit();
        return;
      }
      *t0 = steady::now();
      start(self, i + 1);
    }};
  });
  finished.wait();
  return *rtts;
}

} // namespace

int main() {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0)
    return 1;
  pid_t child = fork();
  if (child == 0)
    serve(pipe_fds[1]);
  std::uint16_t ports[3];
  if (read(pipe_fds[0], ports, sizeof ports) != sizeof ports) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    return 1;
  }
  nlohmann::json out;
  {
    caf::actor_system_config cfg;
    configure(cfg);
    caf::actor_system sys{cfg};
    auto echo = sys.middleman().remote_actor("127.0.0.1", ports[0]);
    if (!echo) {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      return 1;
    }
    auto basp = summarize(
      drive(sys, [echo = *echo](caf::event_based_actor* self, std::uint64_t i) {
        self->request(echo, caf::infinite, i).then([self](std::uint64_t x) {
          self->send(self, x);
        });
      }));
    int fd = connect_loopback(ports[1]);
    int raw_fd = connect_loopback(ports[2]);
    if (fd < 0 || raw_fd < 0) {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      return 1;
    }
    // The reader hands answers to the driver, so it starts with the first
    // round (no answer can come before it).
    std::thread r;
    auto direct = summarize(
      drive(sys, [fd, &r](caf::event_based_actor* self, std::uint64_t i) {
        if (i == 0)
          r = reader(fd, caf::actor_cast<caf::actor>(self));
        write_value(fd, i);
      }));
    // Before the direct connection closes: its end ends the child.
    std::vector<double> raw_rtts;
    for (int i = 0; i < rounds; ++i) {
      auto t0 = steady::now();
      std::uint64_t x = static_cast<std::uint64_t>(i);
      if (!write_value(raw_fd, x)
          || recv(raw_fd, &x, sizeof x, MSG_WAITALL) != sizeof x)
        break;
      raw_rtts.push_back(
        std::chrono::duration<double, std::micro>(steady::now() - t0).count());
    }
    close(raw_fd);
    shutdown(fd, SHUT_RDWR);
    r.join();
    close(fd);
    if (raw_rtts.size() != static_cast<std::size_t>(rounds)) {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      return 1;
    }
    auto raw = summarize(raw_rtts);
    out = {{"rounds", rounds},
           {"basp_rtt_p50_us", basp.p50},
           {"basp_rtt_p99_us", basp.p99},
           {"direct_rtt_p50_us", direct.p50},
           {"direct_rtt_p99_us", direct.p99},
           {"direct_over_basp_p50", direct.p50 / basp.p50},
           {"raw_rtt_p50_us", raw.p50},
           {"raw_rtt_p99_us", raw.p99}};
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
