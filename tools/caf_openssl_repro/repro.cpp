// Minimal reproduction of the caf_openssl connection drops (docs/tls.md).
//
//   caf-openssl-repro ID PORT SECONDS MODE [PEERPORT...]
//
// Publishes one actor on 127.0.0.1:PORT (MODE tls: caf::openssl::publish
// with the certificate, key and CA of $CERTS/node.pem, node.key, ca.pem;
// MODE plain: the plain middleman), connects to every PEERPORT through the
// matching middleman actor (connect_atom, as ees-node's transport does),
// sends each connected peer a 100-byte string every 10 ms for SECONDS and
// prints one line: connects, drops (down_msg reasons), sent and received.
// $DELAY_MS delays the first connect (to stagger the two directions).
// Run two or three of them against each other (run.sh); linked with
// ees_openssl_fix (caf-openssl-repro-fixed) the drops are gone.
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace caf;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

using ping_atom = atom_constant<atom("ping")>;
using retry_atom = atom_constant<atom("retry")>;
using stop_atom = atom_constant<atom("stop")>;

struct node_state {
  io::middleman_actor mm;
  int id = 0;
  std::map<uint16_t, actor> peers;
  int connects = 0;
  int drops = 0;
  std::map<std::string, int> reasons;
  long sent = 0;
  long received = 0;
  steady_clock::time_point t0 = steady_clock::now();

  double ms() const {
    return std::chrono::duration<double, std::milli>(steady_clock::now() - t0)
      .count();
  }
};

void connect(stateful_actor<node_state>* self, uint16_t port) {
  self
    ->request(self->state.mm, std::chrono::seconds(2), connect_atom::value,
              std::string{"127.0.0.1"}, port)
    .then(
      [self, port](const node_id&, strong_actor_ptr& ptr,
                   const std::set<std::string>&) {
        auto a = actor_cast<actor>(ptr);
        if (!a) {
          self->delayed_send(self, milliseconds(50), retry_atom::value, port);
          return;
        }
        auto& st = self->state;
        st.peers[port] = a;
        ++st.connects;
        std::fprintf(stderr, "[%d] %.1f ms connected to %u\n", st.id, st.ms(),
                     port);
        self->monitor(a);
      },
      [self, port](error& err) {
        std::fprintf(stderr, "[%d] %.1f ms connect to %u failed: %s\n",
                     self->state.id, self->state.ms(), port,
                     to_string(err).c_str());
        self->delayed_send(self, milliseconds(50), retry_atom::value, port);
      });
}

behavior node(stateful_actor<node_state>* self, int id, io::middleman_actor mm,
              std::vector<uint16_t> ports, int delay_ms) {
  self->state.id = id;
  self->state.mm = std::move(mm);
  self->set_down_handler([self](down_msg& dm) {
    auto& st = self->state;
    for (auto& [port, a] : st.peers)
      if (a && a.address() == dm.source) {
        auto reason = to_string(dm.reason);
        std::fprintf(stderr, "[%d] %.1f ms lost %u: %s\n", st.id, st.ms(), port,
                     reason.c_str());
        ++st.drops;
        ++st.reasons[reason];
        a = nullptr;
        self->delayed_send(self, milliseconds(50), retry_atom::value, port);
        return;
      }
  });
  for (auto p : ports)
    self->delayed_send(self, milliseconds(delay_ms), retry_atom::value, p);
  self->send(self, ping_atom::value);
  return {
    [self](ping_atom) {
      for (auto& [port, a] : self->state.peers)
        if (a) {
          self->send(a, std::string(100, 'x'));
          ++self->state.sent;
        }
      self->delayed_send(self, milliseconds(10), ping_atom::value);
    },
    [self](std::string&) { ++self->state.received; },
    [self](retry_atom, uint16_t port) { connect(self, port); },
    [self](stop_atom) {
      auto& st = self->state;
      std::printf("node %d: connects=%d drops=%d sent=%ld received=%ld", st.id,
                  st.connects, st.drops, st.sent, st.received);
      for (auto& [reason, n] : st.reasons)
        std::printf(" [%s x%d]", reason.c_str(), n);
      std::printf("\n");
      std::fflush(stdout);
      self->quit();
    },
  };
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: caf-openssl-repro ID PORT SECONDS tls|plain "
                         "[PEERPORT...]\n");
    return 2;
  }
  int id = std::atoi(argv[1]);
  auto port = static_cast<uint16_t>(std::atoi(argv[2]));
  int secs = std::atoi(argv[3]);
  bool tls = std::string{argv[4]} == "tls";
  std::vector<uint16_t> peers;
  for (int i = 5; i < argc; ++i)
    peers.push_back(static_cast<uint16_t>(std::atoi(argv[i])));
  const char* delay = std::getenv("DELAY_MS");
  const char* certs = std::getenv("CERTS");
  std::string dir = certs != nullptr ? certs : ".";
  actor_system_config cfg;
  cfg.load<io::middleman>();
  if (tls) {
    cfg.load<openssl::manager>();
    cfg.set("openssl.certificate", dir + "/node.pem");
    cfg.set("openssl.key", dir + "/node.key");
    cfg.set("openssl.cafile", dir + "/ca.pem");
  }
  actor_system sys{cfg};
  auto mm = tls ? sys.openssl_manager().actor_handle()
                : sys.middleman().actor_handle();
  auto n
    = sys.spawn(node, id, mm, peers, delay != nullptr ? std::atoi(delay) : 0);
  auto p = tls ? openssl::publish(n, port, "127.0.0.1", true)
               : sys.middleman().publish(n, port, "127.0.0.1", true);
  if (!p) {
    std::fprintf(stderr, "publish failed: %s\n", to_string(p.error()).c_str());
    anon_send_exit(n, exit_reason::kill);
    return 1;
  }
  // A throw-away tool, not a test: it runs for a fixed wall-clock time.
  std::this_thread::sleep_for(std::chrono::seconds(secs));
  anon_send(n, stop_atom::value);
  scoped_actor self{sys};
  self->wait_for(n);
  return 0;
}
