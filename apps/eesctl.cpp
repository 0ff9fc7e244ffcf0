// eesctl: command-line client of an ees-cluster (ees::cluster::client over
// CAF io / BASP).
//
//   eesctl --connect host:port[,host:port...] [--timeout-ms MS] [TLS] COMMAND
//
// TLS is `--tls-cert PEM --tls-key PEM --tls-ca PEM` (all three; the node's
// `ees.cluster.tls.*`): eesctl then connects over caf_openssl with this
// client certificate, which the node checks against its CA (docs/tls.md).
//
//   status GROUP                 the status of the first server's replica
//   submit GROUP JSON            proposes one command (alias: propose)
//   query GROUP JSON [--consistency linearizable|leader|stale]
//   bench GROUP N [--concurrency C] [--prefix P] [--value-size B]
//                                N AssignKey commands (keys P-0 .. P-N-1)
//   lock GROUP LOCK OWNER [--ttl-ms T] [--wait-ms W] [--hold-ms H]
//                                acquires, holds H ms, releases
//   contend GROUP LOCK OWNER --duration-ms D [--ttl-ms T] [--wait-ms W]
//                                acquires and releases in a loop for D ms,
//                                one `grant` line per grant
//
// GROUP is an application name of `ees.cluster.raft.groups[app]` (or a
// numeric group id). Calls go to the group's leader (following hints) and
// are retried with the same request id until the timeout. Output is
// `key=value` tokens, one line per answer. Exit codes: 0 success, 1
// failure, 2 usage.

#include "actors/interfaces.hpp"
#include "actors/tls_plugin.hpp"
#include "actors/type_ids.hpp"
#include "apps/node_common.hpp"
#include "ees/cluster/client.hpp"
#include "protocol/raft/types.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ees;
using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

struct options {
  std::vector<std::string> endpoints;
  std::chrono::milliseconds timeout{5000};
  std::size_t concurrency = 16;
  std::string prefix = "cmd";
  std::size_t value_size = 16;
  std::string consistency = "linearizable";
  std::chrono::milliseconds ttl{10000};
  std::chrono::milliseconds wait{10000};
  std::chrono::milliseconds hold{0};
  std::chrono::milliseconds duration{0};
  /// All three set: connect over TLS.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  /// The TLS plugin main enabled (null without TLS).
  const tls::plugin_api* tls_api = nullptr;
  std::vector<std::string> args;
};

int usage() {
  std::fprintf(
    stderr,
    "usage: eesctl --connect host:port[,host:port...] [--timeout-ms MS] "
    "[--tls-cert PEM --tls-key PEM --tls-ca PEM] COMMAND\n"
    "  status GROUP\n"
    "  submit GROUP JSON\n"
    "  query GROUP JSON [--consistency linearizable|leader|stale]\n"
    "  bench GROUP N [--concurrency C] [--prefix P] [--value-size B]\n"
    "  lock GROUP LOCK OWNER [--ttl-ms T] [--wait-ms W] [--hold-ms H]\n"
    "  contend GROUP LOCK OWNER --duration-ms D [--ttl-ms T] [--wait-ms W]\n");
  return 2;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(sep, start);
    if (end == std::string::npos)
      end = s.size();
    if (end > start)
      out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// Dials nodes: over TLS through the plugin's OpenSSL manager, else plain
/// TCP.
caf::io::middleman_actor connector(caf::actor_system& sys,
                                   const options& opts) {
  return opts.tls_api != nullptr ? opts.tls_api->connector(sys)
                                 : sys.middleman().actor_handle();
}

/// Status goes to one named server, not to the leader.
int status(caf::actor_system& sys, const options& opts, group_id g) {
  auto& addr = opts.endpoints.front();
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return usage();
  auto host = addr.substr(0, colon);
  auto port = static_cast<std::uint16_t>(std::atoi(addr.c_str() + colon + 1));
  caf::scoped_actor self{sys};
  caf::strong_actor_ptr ptr;
  std::string failure = "timeout";
  self
    ->request(connector(sys, opts), opts.timeout, caf::connect_atom_v, host,
              port)
    .receive([&](const caf::node_id&, caf::strong_actor_ptr& p,
                 const std::set<std::string>&) { ptr = std::move(p); },
             [&](caf::error& err) { failure = caf::to_string(err); });
  if (!ptr) {
    std::fprintf(stderr, "eesctl: cannot connect to %s: %s\n", addr.c_str(),
                 failure.c_str());
    return 1;
  }
  auto srv = caf::actor_cast<actors::server_actor>(ptr);
  int rc = 1;
  self->request(srv, opts.timeout, atom::client_v, atom::status_v, g)
    .receive(
      [&](actors::client_status& st) {
        std::printf("group=%llu node=%llu role=%s term=%llu leader=%llu "
                    "leader_address=%s commit=%llu applied=%llu last=%llu "
                    "snapshot=%llu installed=%llu failed=%d %s\n",
                    static_cast<unsigned long long>(st.group.value),
                    static_cast<unsigned long long>(st.node.value),
                    raft::to_string(static_cast<raft::role>(st.role)),
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
        rc = 0;
      },
      [&](caf::error& err) {
        std::fprintf(stderr, "eesctl: status failed: %s\n",
                     caf::to_string(err).c_str());
      });
  return rc;
}

/// Prints a call's outcome; 0 when the group answered.
int print_result(const cluster::client_result& r) {
  if (!r.ok) {
    std::printf("ok=0 error=%s attempts=%u\n", r.error.c_str(), r.attempts);
    return 1;
  }
  std::printf("ok=1 applied=%llu attempts=%u value=%s\n",
              static_cast<unsigned long long>(r.applied.value), r.attempts,
              r.value.c_str());
  return 0;
}

using apps::percentile;

/// Keeps `concurrency` AssignKey commands outstanding until `n` were
/// answered. A command counts as acknowledged when the state machine
/// accepted it.
int bench(cluster::client& cl, const options& opts, group_id g, std::size_t n) {
  struct shared_state {
    std::mutex mtx;
    std::condition_variable done_cv;
    std::size_t next = 0;
    std::size_t done = 0;
    std::size_t acked = 0;
    std::size_t failed = 0;
    std::string first_error;
    std::vector<double> latencies_ms;
  };
  auto st = std::make_shared<shared_state>();
  st->latencies_ms.reserve(n);
  std::string owner(std::max<std::size_t>(1, opts.value_size), 'v');
  auto send_one = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = send_one;
  *send_one = [&cl, st, g, n, owner, weak, prefix = opts.prefix] {
    std::size_t i = 0;
    {
      std::lock_guard<std::mutex> guard{st->mtx};
      if (st->next >= n)
        return;
      i = st->next++;
    }
    auto key = prefix + "-" + std::to_string(i);
    json cmd = {{"v", 1},
                {"type", "AssignKey"},
                {"id", key},
                {"key", key},
                {"owner", owner}};
    auto start = clock_type::now();
    cl.submit_async(
      g, cmd.dump(), [st, n, start, weak](cluster::client_result r) {
        auto ms
          = std::chrono::duration<double, std::milli>(clock_type::now() - start)
              .count();
        bool accepted = false;
        std::string error = r.error;
        if (r.ok) {
          auto ans = json::parse(r.value, nullptr, false);
          accepted = !ans.is_discarded() && ans.value("ok", false);
          if (!accepted)
            error = r.value;
        }
        bool finished = false;
        {
          std::lock_guard<std::mutex> guard{st->mtx};
          st->latencies_ms.push_back(ms);
          if (accepted) {
            ++st->acked;
          } else {
            ++st->failed;
            if (st->first_error.empty())
              st->first_error = error;
          }
          finished = ++st->done == n;
        }
        if (finished)
          st->done_cv.notify_all();
        else if (auto f = weak.lock())
          (*f)();
      });
  };
  auto t0 = clock_type::now();
  for (std::size_t k = 0; k < std::min(n, opts.concurrency); ++k)
    (*send_one)();
  std::unique_lock<std::mutex> guard{st->mtx};
  st->done_cv.wait(guard, [&] { return st->done == n; });
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  auto p50 = percentile(st->latencies_ms, 0.50);
  auto p99 = percentile(st->latencies_ms, 0.99);
  std::printf(
    "bench n=%zu acked=%zu failed=%zu seconds=%.3f "
    "throughput=%.0f p50_ms=%.3f p99_ms=%.3f%s%s\n",
    n, st->acked, st->failed, secs,
    secs > 0 ? static_cast<double>(st->acked) / secs : 0.0, p50, p99,
    st->first_error.empty() ? "" : " error=", st->first_error.c_str());
  return st->failed == 0 ? 0 : 1;
}

/// Acquires, holds and releases `lock` once; prints the grant.
int lock_once(cluster::client& cl, const options& opts, group_id g) {
  cluster::lock_handle h{cl, g, opts.args[2], opts.args[3], opts.ttl};
  // Lock loss (the lease expired in replicated time) is pushed.
  h.on_lost([](const cluster::lock_grant& lost) {
    std::printf("lost token=%llu\n",
                static_cast<unsigned long long>(lost.token));
    std::fflush(stdout);
  });
  std::string why;
  auto grant = h.acquire(opts.wait, &why);
  if (!grant) {
    std::printf("ok=0 error=%s\n", why.c_str());
    return 1;
  }
  std::printf("ok=1 token=%llu expires_ms=%lld\n",
              static_cast<unsigned long long>(grant->token),
              static_cast<long long>(grant->expires_ms));
  std::fflush(stdout);
  if (opts.hold.count() > 0)
    std::this_thread::sleep_for(opts.hold); // The caller asked to hold it.
  bool released = h.release(&why);
  std::printf("released=%d%s%s\n", released ? 1 : 0,
              released ? "" : " error=", released ? "" : why.c_str());
  return released ? 0 : 1;
}

/// Acquires and releases `lock` in a loop for `opts.duration`; one line per
/// grant: `grant owner=O token=T released=0|1 [error=E]`.
int contend(cluster::client& cl, const options& opts, group_id g) {
  cluster::lock_handle h{cl, g, opts.args[2], opts.args[3], opts.ttl};
  auto end = clock_type::now() + opts.duration;
  std::size_t grants = 0;
  std::size_t failures = 0;
  while (clock_type::now() < end) {
    std::string why;
    auto grant = h.acquire(opts.wait, &why);
    if (!grant) {
      ++failures;
      std::printf("nogrant owner=%s error=%s\n", opts.args[3].c_str(),
                  why.c_str());
      std::fflush(stdout);
      continue;
    }
    ++grants;
    bool released = h.release(&why);
    std::printf(
      "grant owner=%s token=%llu released=%d release_index=%llu%s%s\n",
      opts.args[3].c_str(), static_cast<unsigned long long>(grant->token),
      released ? 1 : 0,
      static_cast<unsigned long long>(released ? h.last_release_index().value
                                               : 0),
      released ? "" : " error=", released ? "" : why.c_str());
    std::fflush(stdout);
  }
  std::printf("contend owner=%s grants=%zu failures=%zu\n",
              opts.args[3].c_str(), grants, failures);
  return grants > 0 ? 0 : 1;
}

int run(caf::actor_system& sys, const options& opts) {
  auto& cmd = opts.args[0];
  auto g = apps::group_for_app(opts.args[1]);
  auto n_args = opts.args.size();
  if (cmd == "status" && n_args == 2)
    return status(sys, opts, g);
  cluster::client_options co;
  co.endpoints = opts.endpoints;
  co.timeout = opts.timeout;
  co.attempt_timeout = std::min(opts.timeout, std::chrono::milliseconds{1000});
  // Without TLS the client dials through the middleman itself, and then
  // also sends its calls over the servers' direct links.
  if (opts.tls_api != nullptr)
    co.connector = connector(sys, opts);
  cluster::client cl{sys, co};
  if ((cmd == "submit" || cmd == "propose") && n_args == 3)
    return print_result(cl.submit(g, opts.args[2]));
  if (cmd == "query" && n_args == 3) {
    static const std::map<std::string, cluster::consistency> levels{
      {"linearizable", cluster::consistency::linearizable},
      {"leader", cluster::consistency::leader},
      {"stale", cluster::consistency::stale}};
    auto level = levels.find(opts.consistency);
    if (level == levels.end())
      return usage();
    return print_result(cl.query(g, opts.args[2], level->second));
  }
  if (cmd == "bench" && n_args == 3) {
    auto& count = opts.args[2];
    if (count.empty() || count.size() > 12
        || count.find_first_not_of("0123456789") != std::string::npos)
      return usage();
    return bench(cl, opts, g, static_cast<std::size_t>(std::stoull(count)));
  }
  if (cmd == "lock" && n_args == 4)
    return lock_once(cl, opts, g);
  if (cmd == "contend" && n_args == 4 && opts.duration.count() > 0)
    return contend(cl, opts, g);
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
    auto millis = [&] {
      return std::chrono::milliseconds{std::atol(value().c_str())};
    };
    if (arg == "--connect")
      opts.endpoints = split(value(), ',');
    else if (arg == "--timeout-ms")
      opts.timeout = millis();
    else if (arg == "--concurrency")
      opts.concurrency = static_cast<std::size_t>(std::atol(value().c_str()));
    else if (arg == "--prefix")
      opts.prefix = value();
    else if (arg == "--value-size")
      opts.value_size = static_cast<std::size_t>(std::atol(value().c_str()));
    else if (arg == "--consistency")
      opts.consistency = value();
    else if (arg == "--ttl-ms")
      opts.ttl = millis();
    else if (arg == "--wait-ms")
      opts.wait = millis();
    else if (arg == "--hold-ms")
      opts.hold = millis();
    else if (arg == "--duration-ms")
      opts.duration = millis();
    else if (arg == "--tls-cert")
      opts.tls_cert = value();
    else if (arg == "--tls-key")
      opts.tls_key = value();
    else if (arg == "--tls-ca")
      opts.tls_ca = value();
    else if (arg.rfind("--", 0) == 0)
      return usage();
    else
      opts.args.push_back(arg);
  }
  if (opts.endpoints.empty() || opts.args.size() < 2
      || opts.timeout.count() <= 0 || opts.concurrency == 0)
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
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  if (tls) {
    opts.tls_api
      = tls::enable(cfg, {opts.tls_cert, opts.tls_key, opts.tls_ca}, "eesctl");
    if (opts.tls_api == nullptr)
      return 2;
  }
  cfg.add_message_types<caf::id_block::ees>();
  apps::configure_scheduler(cfg, 0);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  int rc = 0;
  {
    caf::actor_system sys{cfg};
    rc = run(sys, opts);
  }
  return rc;
}
