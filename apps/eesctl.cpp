// eesctl: command-line client of an ees-node (through CAF io / BASP).
//
//   eesctl --connect host:port [--timeout-ms MS] [TLS] status GROUP
//   eesctl --connect host:port [--timeout-ms MS] propose GROUP DATA
//   eesctl --connect host:port [--timeout-ms MS] bench GROUP N
//          [--concurrency C] [--prefix P]
//
// TLS is `--tls-cert PEM --tls-key PEM --tls-ca PEM` (all three; the node's
// `ees.cluster.tls.*`): eesctl then connects over caf_openssl with this
// client certificate, which the node checks against its CA (docs/tls.md).
//
// GROUP is an application name of `ees.cluster.raft.groups[app]` (or a
// numeric group id). `propose` and `bench` follow leader hints. Every remote
// request has a finite timeout. Output is `key=value` tokens, one line per
// answer. Exit codes: 0 success, 1 failure, 2 usage.

#include "actors/interfaces.hpp"
#include "actors/openssl_error_queue.hpp"
#include "actors/type_ids.hpp"
#include "apps/node_common.hpp"
#include "protocol/raft/types.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ees;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string host;
  std::uint16_t port = 0;
  std::chrono::milliseconds timeout{5000};
  std::size_t concurrency = 16;
  std::string prefix = "cmd";
  /// All three set: connect over TLS.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;

  std::vector<std::string> args;
};

int usage() {
  std::fprintf(stderr,
               "usage: eesctl --connect host:port [--timeout-ms MS] status "
               "GROUP\n"
               "       (every form takes --tls-cert PEM --tls-key PEM "
               "--tls-ca PEM for TLS)\n"
               "       eesctl --connect host:port propose GROUP DATA\n"
               "       eesctl --connect host:port bench GROUP N "
               "[--concurrency C] [--prefix P]\n");
  return 2;
}

bool split_address(const std::string& addr, std::string& host,
                   std::uint16_t& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return false;
  host = addr.substr(0, colon);
  try {
    auto p = std::stoul(addr.substr(colon + 1));
    if (p == 0 || p > 65535)
      return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

const char* role_name(std::uint8_t r) {
  return raft::to_string(static_cast<raft::role>(r));
}

class client {
public:
  client(caf::actor_system& sys, const options& opts)
    : sys_(sys), self_(sys), opts_(opts) {
    // nop
  }

  /// Connects (blocking, fine in a CLI) to `addr`, cached.
  std::optional<actors::server_actor> connect(const std::string& addr) {
    if (auto i = cache_.find(addr); i != cache_.end())
      return i->second;
    std::string host;
    std::uint16_t port = 0;
    if (!split_address(addr, host, port))
      return std::nullopt;
    // The middleman actor's connect_atom: bounded, and no interface check
    // (the interface strings of typed actors depend on the build).
    caf::strong_actor_ptr res;
    std::string failure = "timeout";
    auto mm = opts_.tls_cert.empty() ? sys_.middleman().actor_handle()
                                     : sys_.openssl_manager().actor_handle();
    self_->request(mm, opts_.timeout, caf::connect_atom_v, host, port)
      .receive([&](const caf::node_id&, caf::strong_actor_ptr& ptr,
                   const std::set<std::string>&) { res = std::move(ptr); },
               [&](caf::error& err) { failure = caf::to_string(err); });
    if (!res) {
      std::fprintf(stderr, "eesctl: cannot connect to %s: %s\n", addr.c_str(),
                   failure.c_str());
      return std::nullopt;
    }
    auto hdl = caf::actor_cast<actors::server_actor>(res);
    cache_[addr] = hdl;
    return hdl;
  }

  caf::expected<actors::client_status> status(const actors::server_actor& srv,
                                              group_id g) {
    caf::expected<actors::client_status> out{caf::sec::request_timeout};
    self_->request(srv, opts_.timeout, atom::client_v, atom::status_v, g)
      .receive([&](actors::client_status& st) { out = std::move(st); },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  caf::expected<actors::client_reply> propose(const actors::server_actor& srv,
                                              group_id g, std::string data) {
    caf::expected<actors::client_reply> out{caf::sec::request_timeout};
    self_
      ->request(srv, opts_.timeout, atom::client_v, atom::propose_v, g,
                std::move(data))
      .receive([&](actors::client_reply& r) { out = std::move(r); },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  /// Finds the leader's address by following hints, within the timeout.
  std::optional<std::string> find_leader(const std::string& start, group_id g) {
    auto deadline = clock_type::now() + opts_.timeout;
    auto addr = start;
    while (clock_type::now() < deadline) {
      if (auto srv = connect(addr)) {
        auto st = status(*srv, g);
        if (st && st->role == static_cast<std::uint8_t>(raft::role::leader))
          return addr;
        if (st && !st->leader_address.empty()) {
          addr = st->leader_address;
          continue;
        }
      }
      addr = start;
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return std::nullopt;
  }

  caf::actor_system& sys_;
  caf::scoped_actor self_;
  const options& opts_;
  std::map<std::string, actors::server_actor> cache_;
};

void print_status(const actors::client_status& st) {
  std::printf(
    "group=%llu node=%llu role=%s term=%llu leader=%llu "
    "leader_address=%s commit=%llu applied=%llu last=%llu snapshot=%llu "
    "installed=%llu failed=%d %s\n",
    static_cast<unsigned long long>(st.group.value),
    static_cast<unsigned long long>(st.node.value), role_name(st.role),
    static_cast<unsigned long long>(st.term.value),
    static_cast<unsigned long long>(st.leader.value),
    st.leader_address.empty() ? "-" : st.leader_address.c_str(),
    static_cast<unsigned long long>(st.commit.value),
    static_cast<unsigned long long>(st.applied.value),
    static_cast<unsigned long long>(st.last_index.value),
    static_cast<unsigned long long>(st.snapshot_index.value),
    static_cast<unsigned long long>(st.snapshots_installed),
    st.failure.empty() ? 0 : 1, st.state.c_str());
  if (!st.failure.empty())
    std::fprintf(stderr, "eesctl: group %llu failed on node %llu: %s\n",
                 static_cast<unsigned long long>(st.group.value),
                 static_cast<unsigned long long>(st.node.value),
                 st.failure.c_str());
}

struct bench_result {
  std::size_t acked = 0;
  std::size_t failed = 0;
  std::vector<double> latencies_ms;
  std::string first_error;
};

/// Keeps `concurrency` proposals outstanding until `n` were answered.
caf::behavior bench_actor(caf::event_based_actor* self,
                          actors::server_actor leader, group_id g,
                          std::size_t n, std::size_t concurrency,
                          std::string prefix, std::chrono::milliseconds timeout,
                          std::shared_ptr<bench_result> out) {
  struct state {
    std::size_t next = 0;
    std::size_t done = 0;
  };
  auto st = std::make_shared<state>();
  auto send_one = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = send_one;
  *send_one = [=] {
    if (st->next >= n)
      return;
    auto i = st->next++;
    auto start = clock_type::now();
    auto finish = [=] {
      out->latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(clock_type::now() - start)
          .count());
      if (++st->done == n) {
        self->quit();
        return;
      }
      if (auto f = weak.lock())
        (*f)();
    };
    self
      ->request(leader, timeout, atom::client_v, atom::propose_v, g,
                prefix + "-" + std::to_string(i))
      .then(
        [=](actors::client_reply& r) {
          if (r.ok) {
            ++out->acked;
          } else {
            ++out->failed;
            if (out->first_error.empty())
              out->first_error = r.error;
          }
          finish();
        },
        [=](caf::error& err) {
          ++out->failed;
          if (out->first_error.empty())
            out->first_error = caf::to_string(err);
          finish();
        });
  };
  // The closure lives as long as the actor's behavior holds it.
  for (std::size_t k = 0; k < std::min(n, concurrency); ++k)
    (*send_one)();
  if (n == 0)
    self->quit();
  return {[send_one](caf::ok_atom) {
  }};
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.end());
  return v[k];
}

int run(caf::actor_system& sys, const options& opts) {
  client cl{sys, opts};
  auto start_addr = opts.host + ":" + std::to_string(opts.port);
  auto& cmd = opts.args[0];
  auto g = apps::group_for_app(opts.args[1]);
  if (cmd == "status" && opts.args.size() == 2) {
    auto srv = cl.connect(start_addr);
    if (!srv)
      return 1;
    auto st = cl.status(*srv, g);
    if (!st) {
      std::fprintf(stderr, "eesctl: status failed: %s\n",
                   caf::to_string(st.error()).c_str());
      return 1;
    }
    print_status(*st);
    return 0;
  }
  if (cmd == "propose" && opts.args.size() == 3) {
    auto deadline = clock_type::now() + opts.timeout;
    auto addr = start_addr;
    std::string last_error = "timeout";
    while (clock_type::now() < deadline) {
      if (auto srv = cl.connect(addr)) {
        auto r = cl.propose(*srv, g, opts.args[2]);
        if (r && r->ok) {
          std::printf("ok=1 value=%s leader_address=%s\n", r->value.c_str(),
                      addr.c_str());
          return 0;
        }
        if (r && !r->leader_address.empty() && r->leader_address != addr) {
          addr = r->leader_address;
          continue;
        }
        last_error = r ? r->error : caf::to_string(r.error());
      }
      addr = start_addr;
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    std::printf("ok=0 error=%s\n", last_error.c_str());
    return 1;
  }
  if (cmd == "bench" && opts.args.size() == 3) {
    auto& count = opts.args[2];
    if (count.empty() || count.size() > 12
        || count.find_first_not_of("0123456789") != std::string::npos)
      return usage();
    auto n = static_cast<std::size_t>(std::stoull(count));
    auto leader_addr = cl.find_leader(start_addr, g);
    if (!leader_addr) {
      std::fprintf(stderr, "eesctl: no leader found for group %s\n",
                   opts.args[1].c_str());
      std::printf("bench n=%zu acked=0 failed=%zu error=no_leader\n", n, n);
      return 1;
    }
    auto leader = cl.connect(*leader_addr);
    auto out = std::make_shared<bench_result>();
    out->latencies_ms.reserve(n);
    auto t0 = clock_type::now();
    auto worker = sys.spawn(bench_actor, *leader, g, n,
                            std::max<std::size_t>(1, opts.concurrency),
                            opts.prefix, opts.timeout, out);
    cl.self_->wait_for(worker);
    auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    auto p50 = percentile(out->latencies_ms, 0.50);
    auto p99 = percentile(out->latencies_ms, 0.99);
    std::printf(
      "bench n=%zu acked=%zu failed=%zu leader=%s seconds=%.3f "
      "throughput=%.0f p50_ms=%.3f p99_ms=%.3f%s%s\n",
      n, out->acked, out->failed, leader_addr->c_str(), secs,
      secs > 0 ? static_cast<double>(out->acked) / secs : 0.0, p50, p99,
      out->first_error.empty() ? "" : " error=", out->first_error.c_str());
    return out->failed == 0 ? 0 : 1;
  }
  return usage();
}

} // namespace

int main(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      return i + 1 < argc ? argv[++i] : std::string{};
    };
    if (arg == "--connect") {
      if (!split_address(value(), opts.host, opts.port))
        return usage();
    } else if (arg == "--timeout-ms") {
      opts.timeout = std::chrono::milliseconds{std::atol(value().c_str())};
    } else if (arg == "--concurrency") {
      opts.concurrency = static_cast<std::size_t>(std::atol(value().c_str()));
    } else if (arg == "--prefix") {
      opts.prefix = value();
    } else if (arg == "--tls-cert") {
      opts.tls_cert = value();
    } else if (arg == "--tls-key") {
      opts.tls_key = value();
    } else if (arg == "--tls-ca") {
      opts.tls_ca = value();
    } else if (arg.rfind("--", 0) == 0) {
      return usage();
    } else {
      opts.args.push_back(arg);
    }
  }
  if (opts.host.empty() || opts.args.size() < 2 || opts.timeout.count() <= 0)
    return usage();
  bool tls
    = !opts.tls_cert.empty() || !opts.tls_key.empty() || !opts.tls_ca.empty();
  if (tls
      && (opts.tls_cert.empty() || opts.tls_key.empty()
          || opts.tls_ca.empty())) {
    std::fprintf(stderr, "eesctl: TLS needs --tls-cert, --tls-key and "
                         "--tls-ca\n");
    return 2;
  }
  if (tls && !tls::error_queue_fix_active()) {
    std::fprintf(stderr, "eesctl: this binary lacks the OpenSSL error-queue "
                         "workaround (docs/tls.md)\n");
    return 2;
  }
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  if (tls) {
    cfg.load<caf::openssl::manager>();
    cfg.set("openssl.certificate", opts.tls_cert);
    cfg.set("openssl.key", opts.tls_key);
    cfg.set("openssl.cafile", opts.tls_ca);
  }
  cfg.add_message_types<caf::id_block::ees>();
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  int rc = 0;
  {
    caf::actor_system sys{cfg};
    rc = run(sys, opts);
  }
  return rc;
}
