// ees_loadgen: the benchmark harness's load generator for ees-cluster,
// implementing the contract of bench/README.md ("Load-generator contract")
// with the public client API (ees::cluster::client, lock_handle).
//
// What one operation is, on the ClusterStateMachine of group "bench":
// - put: AssignKey of a random key k-0..k-(K-1) to the --value-size owner
//   string that `fill` gives every key, with a fresh request id. The state
//   machine has no overwrite (a key owned by someone else is a conflict), so
//   the owner stays the same; each put is still one durable replicated log
//   entry that the state machine decodes, checks and answers, as an etcd Put
//   over K keys is, and the state stays at K keys as etcd's and Ratis's key
//   spaces do (W6 measures a growing state).
// - get: GetKey of a random key k-0..k-(K-1) (written by `fill`), read
//   linearizably (ReadIndex on the leader).
// - lock: acquire + release of the worker's own lock (lock_handle).
// - contended: --clients clients (each its own client) on one lock, hold 0.
// - failover-probe: puts at concurrency 1, each bounded by --op-timeout-ms.
// - fill: AssignKey k-0..k-(K-1) once each.
// - leader: the leader endpoint and highest term seen.
#include "actors/interfaces.hpp"
#include "actors/type_ids.hpp"
#include "apps/node_common.hpp"
#include "ees/cluster/client.hpp"
#include "protocol/cluster/command.hpp"
#include "protocol/cluster/json_fields.hpp"
#include "protocol/raft/types.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>
#include <simdjson.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ees;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

struct options {
  std::vector<std::string> endpoints;
  std::string workload;
  std::size_t concurrency = 1;
  double duration_s = 5;
  double warmup_s = 0;
  std::size_t value_size = 256;
  std::size_t keys = 1000;
  std::size_t clients = 2;
  std::chrono::milliseconds op_timeout{5000};
  double gap_ms = 100;
  /// client_options::direct_links (an A/B of the client path).
  bool direct_links = true;
};

double unix_now() {
  return std::chrono::duration<double>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

struct cpu_times {
  double user = 0;
  double sys = 0;
};

cpu_times cpu_now() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec)
           + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return {secs(ru.ru_utime), secs(ru.ru_stime)};
}

using apps::percentile;

/// The measured window and what happened in it.
struct window {
  steady::time_point start;
  steady::time_point end;
  double t_start = 0;
  double t_end = 0;
  cpu_times cpu0;
  cpu_times cpu1;
  std::mutex mtx;
  std::vector<double> latencies_ms;
  std::vector<double> extra_ms; // second latency series (lock acquire)
  std::size_t errors = 0;
  std::string first_error;

  void open(const options& o) {
    start = steady::now()
            + std::chrono::duration_cast<steady::duration>(
              std::chrono::duration<double>(o.warmup_s));
    end = start
          + std::chrono::duration_cast<steady::duration>(
            std::chrono::duration<double>(o.duration_s));
  }

  /// An operation counts, with its full latency, if it completes inside
  /// the window.
  bool inside(steady::time_point, steady::time_point b) const {
    return b >= start && b <= end;
  }

  void record(steady::time_point a, steady::time_point b, bool ok,
              const std::string& error, double extra = -1) {
    if (!inside(a, b))
      return;
    std::lock_guard<std::mutex> guard{mtx};
    if (ok) {
      latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(b - a).count());
      if (extra >= 0)
        extra_ms.push_back(extra);
    } else {
      ++errors;
      if (first_error.empty())
        first_error = error;
    }
  }

  /// Marks the window's CPU and wall-clock bounds from the main thread.
  void measure() {
    std::this_thread::sleep_until(start);
    cpu0 = cpu_now();
    t_start = unix_now();
    std::this_thread::sleep_until(end);
    cpu1 = cpu_now();
    t_end = unix_now();
  }

  json report(const options& o, double throughput_ops) const {
    json j;
    j["system"] = "ees";
    j["workload"] = o.workload;
    j["concurrency"] = o.concurrency;
    j["ops"] = latencies_ms.size();
    j["errors"] = errors;
    j["duration_s"] = o.duration_s;
    j["throughput"] = throughput_ops;
    j["p50_ms"] = percentile(latencies_ms, 0.50);
    j["p99_ms"] = percentile(latencies_ms, 0.99);
    j["p999_ms"] = percentile(latencies_ms, 0.999);
    j["cpu_user_s"] = cpu1.user - cpu0.user;
    j["cpu_sys_s"] = cpu1.sys - cpu0.sys;
    j["t_start"] = t_start;
    j["t_end"] = t_end;
    if (!first_error.empty())
      j["first_error"] = first_error;
    return j;
  }
};

const group_id bench_group = apps::group_for_app("bench");

/// The AssignKey command, written directly (a JSON tree and its dump were
/// a quarter of the load generator's CPU); the text is what dump() wrote.
std::string put_command(const std::string& key, const std::string& value,
                        const std::string& id) {
  std::string cmd;
  cmd.reserve(64 + key.size() + value.size() + id.size());
  cmd += R"({"id":)";
  cluster_sm::detail::append_json_string(cmd, id);
  cmd += R"(,"key":)";
  cluster_sm::detail::append_json_string(cmd, key);
  cmd += R"(,"owner":)";
  cluster_sm::detail::append_json_string(cmd, value);
  cmd += R"(,"type":"AssignKey","v":1})";
  return cmd;
}

/// True when the group answered and the state machine accepted.
bool accepted(const cluster::client_result& r, std::string& error) {
  if (!r.ok) {
    error = r.error;
    return false;
  }
  // simdjson, one parser per thread: nlohmann's parse of the answer (it
  // echoes the 256-byte owner) was another quarter of the CPU.
  thread_local simdjson::dom::parser parser;
  bool ok = false;
  auto doc = parser.parse(r.value);
  if (doc.error() == simdjson::SUCCESS)
    if (auto field = doc["ok"]; field.error() == simdjson::SUCCESS)
      ok = field.is_bool() && field.get_bool().value();
  if (!ok)
    error = r.value.substr(0, 200);
  return ok;
}

/// Runs `concurrency` chains of asynchronous operations until the window
/// closes. `op(worker, n, done)` starts the n-th operation of a worker.
using async_op = std::function<void(std::size_t, std::size_t,
                                    std::function<void(bool, std::string)>)>;

void run_async(const options& o, window& w, const async_op& op) {
  struct chain_state {
    std::mutex mtx;
    std::condition_variable cv;
    std::size_t running = 0;
  };
  auto cs = std::make_shared<chain_state>();
  cs->running = o.concurrency;
  std::vector<std::shared_ptr<std::function<void(std::size_t)>>> chains;
  for (std::size_t k = 0; k < o.concurrency; ++k) {
    auto chain = std::make_shared<std::function<void(std::size_t)>>();
    std::weak_ptr<std::function<void(std::size_t)>> weak = chain;
    *chain = [&w, &op, cs, k, weak](std::size_t n) {
      auto t0 = steady::now();
      if (t0 >= w.end) {
        std::lock_guard<std::mutex> guard{cs->mtx};
        if (--cs->running == 0)
          cs->cv.notify_all();
        return;
      }
      op(k, n, [&w, t0, n, weak](bool ok, std::string error) {
        w.record(t0, steady::now(), ok, error);
        if (auto f = weak.lock())
          (*f)(n + 1);
      });
    };
    chains.push_back(chain);
  }
  for (auto& c : chains)
    (*c)(0);
  w.measure();
  std::unique_lock<std::mutex> guard{cs->mtx};
  cs->cv.wait_for(guard, o.op_timeout * 4, [&] { return cs->running == 0; });
}

/// Completes one read, so that connections are up before the window opens.
void connect_first(cluster::client& cl) {
  cl.query(bench_group, R"({"v":1,"type":"Status"})",
           cluster::consistency::stale);
}

int put_or_get(cluster::client& cl, const options& o, bool get) {
  connect_first(cl);
  window w;
  w.open(o);
  std::string value(o.value_size, 'v');
  auto prefix = cl.id();
  std::vector<std::mt19937_64> rngs;
  for (std::size_t k = 0; k < o.concurrency; ++k)
    rngs.emplace_back(k + 1);
  async_op op = [&](std::size_t k, std::size_t n,
                    std::function<void(bool, std::string)> done) {
    // A read succeeds when the group answered (not_found is an answer);
    // a write when the state machine accepted it.
    auto finish = [done, get](cluster::client_result r) {
      std::string error = r.error;
      bool ok = get ? r.ok : accepted(r, error);
      done(ok, error);
    };
    if (get) {
      json q = {{"v", 1},
                {"type", "GetKey"},
                {"key", "k-" + std::to_string(rngs[k]() % o.keys)}};
      cl.query_async(bench_group, q.dump(), cluster::consistency::linearizable,
                     finish);
    } else {
      auto key = "k-" + std::to_string(rngs[k]() % o.keys);
      auto id
        = "p-" + prefix + "-" + std::to_string(k) + "-" + std::to_string(n);
      cl.submit_async(bench_group, put_command(key, value, id), finish);
    }
  };
  run_async(o, w, op);
  auto ops = static_cast<double>(w.latencies_ms.size());
  std::printf("%s\n", w.report(o, ops / o.duration_s).dump().c_str());
  return 0;
}

/// The contract's result line for a run without a latency window (fill,
/// failover-probe): counts, throughput and the process's CPU since `cpu0`.
json untimed_report(const options& o, std::size_t ops, std::size_t errors,
                    double secs, const cpu_times& cpu0, const cpu_times& cpu1,
                    double t_start) {
  return {{"system", "ees"},
          {"workload", o.workload},
          {"concurrency", o.concurrency},
          {"ops", ops},
          {"errors", errors},
          {"duration_s", secs},
          {"throughput", static_cast<double>(ops) / secs},
          {"cpu_user_s", cpu1.user - cpu0.user},
          {"cpu_sys_s", cpu1.sys - cpu0.sys},
          {"t_start", t_start},
          {"t_end", unix_now()}};
}

/// W6 fill (`fill`): assigns keys k-0..k-(K-1). `fill-locks`: acquires the
/// locks held-0..held-(K-1), each by its own owner for the longest lease, so
/// that later workloads run against a group holding K locks. No write starts
/// after --duration-s (as in the etcd and Ratis load generators); "ops" counts
/// the keys written.
int fill(cluster::client& cl, options o) {
  std::string value(o.value_size, 'v');
  auto command = [&](std::size_t i) {
    auto n = std::to_string(i);
    if (o.workload != "fill-locks")
      return put_command("k-" + n, value, "k-" + n);
    json cmd = {{"v", 1},
                {"type", "LockCommand"},
                {"id", "held-" + n},
                {"lock", "held-" + n},
                {"owner", "holder-" + n},
                {"ttl_ms", cluster_sm::max_ttl_ms},
                {"wait", false}};
    return cmd.dump();
  };
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> written{0};
  std::atomic<std::size_t> errors{0};
  auto t0 = steady::now();
  auto limit = t0
               + std::chrono::duration_cast<steady::duration>(
                 std::chrono::duration<double>(o.duration_s));
  auto cpu0 = cpu_now();
  auto ts = unix_now();
  // Each worker thread keeps one blocking call in flight.
  std::vector<std::thread> workers;
  for (std::size_t k = 0; k < o.concurrency; ++k)
    workers.emplace_back([&] {
      for (auto i = next++; i < o.keys && steady::now() < limit; i = next++) {
        std::string error;
        if (accepted(cl.submit(bench_group, command(i)), error))
          ++written;
        else
          ++errors;
      }
    });
  for (auto& t : workers)
    t.join();
  auto secs = std::chrono::duration<double>(steady::now() - t0).count();
  auto cpu1 = cpu_now();
  auto j = untimed_report(o, written, errors, secs, cpu0, cpu1, ts);
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

/// W3: each worker acquires and releases its own lock.
int locks(cluster::client& cl, const options& o) {
  connect_first(cl);
  window w;
  w.open(o);
  std::vector<std::thread> workers;
  for (std::size_t k = 0; k < o.concurrency; ++k)
    workers.emplace_back([&, k] {
      cluster::lock_handle h{cl, bench_group,
                             "lock-" + cl.id() + "-" + std::to_string(k),
                             "owner-" + cl.id() + "-" + std::to_string(k),
                             std::chrono::milliseconds{10000}};
      while (steady::now() < w.end) {
        auto t0 = steady::now();
        std::string why;
        auto g = h.acquire(std::chrono::milliseconds{0}, &why);
        auto t1 = steady::now();
        bool ok = g && h.release(&why);
        w.record(t0, steady::now(), ok, why,
                 std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    });
  w.measure();
  for (auto& t : workers)
    t.join();
  auto j
    = w.report(o, static_cast<double>(w.latencies_ms.size()) / o.duration_s);
  j["latency"] = "acquire_plus_release";
  j["acquire_p50_ms"] = percentile(w.extra_ms, 0.50);
  j["acquire_p99_ms"] = percentile(w.extra_ms, 0.99);
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

/// W4: --clients clients on one lock, each releasing at once.
int contended(caf::actor_system& sys, const options& o,
              const cluster::client_options& co) {
  window w;
  std::vector<std::unique_ptr<cluster::client>> clients;
  for (std::size_t k = 0; k < o.clients; ++k) {
    clients.push_back(std::make_unique<cluster::client>(sys, co));
    connect_first(*clients.back());
  }
  auto lock = "contended-" + clients.front()->id();
  w.open(o);
  std::vector<std::thread> workers;
  for (std::size_t k = 0; k < o.clients; ++k)
    workers.emplace_back([&, k] {
      cluster::lock_handle h{*clients[k], bench_group, lock,
                             "owner-" + std::to_string(k),
                             std::chrono::milliseconds{10000}};
      while (steady::now() < w.end) {
        auto t0 = steady::now();
        std::string why;
        auto g = h.acquire(o.op_timeout, &why);
        auto t1 = steady::now();
        if (g)
          h.release(&why);
        // The latency of a handoff is the acquire wait.
        w.record(t0, t1, g.has_value(), why);
      }
    });
  w.measure();
  for (auto& t : workers)
    t.join();
  auto j
    = w.report(o, static_cast<double>(w.latencies_ms.size()) / o.duration_s);
  j["latency"] = "acquire_wait";
  j["clients"] = o.clients;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

/// W5 probe: puts at concurrency 1, each bounded by --op-timeout-ms. Prints
/// "first-ack" to stderr at the first acknowledgement (the harness kills the
/// leader after it) and runs --duration-s from then on (at most 30 s waiting
/// for it); reports the gaps between acknowledgements. Failed puts (the
/// first 20) go to stderr as "error <unix time> <why>".
int failover_probe(cluster::client& cl, const options& o) {
  std::string value(o.value_size, 'v');
  auto end = steady::now() + std::chrono::seconds{30};
  std::vector<double> acks;
  std::size_t errors = 0;
  auto cpu0 = cpu_now();
  auto ts = unix_now();
  for (std::size_t n = 0; steady::now() < end; ++n) {
    auto key = "f-" + cl.id() + "-" + std::to_string(n);
    std::string error;
    if (!accepted(cl.submit(bench_group, put_command(key, value, key)),
                  error)) {
      // The first few failures, for the member logs' timeline.
      if (++errors <= 20)
        std::fprintf(stderr, "error %.3f %s\n", unix_now(), error.c_str());
      continue;
    }
    if (acks.empty()) {
      std::fprintf(stderr, "first-ack\n");
      std::fflush(stderr);
      end = steady::now()
            + std::chrono::duration_cast<steady::duration>(
              std::chrono::duration<double>(o.duration_s));
    }
    acks.push_back(unix_now());
  }
  auto cpu1 = cpu_now();
  json gaps = json::array();
  double max_gap = 0;
  for (std::size_t i = 1; i < acks.size(); ++i) {
    auto gap = (acks[i] - acks[i - 1]) * 1000;
    max_gap = std::max(max_gap, gap);
    if (gap > o.gap_ms)
      gaps.push_back({acks[i - 1], acks[i]});
  }
  auto j = untimed_report(o, acks.size(), errors, o.duration_s, cpu0, cpu1, ts);
  j["concurrency"] = 1;
  j["gaps"] = gaps;
  j["max_gap_ms"] = max_gap;
  j["first_ack"] = acks.empty() ? 0.0 : acks.front();
  j["last_ack"] = acks.empty() ? 0.0 : acks.back();
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

/// The leader endpoint and the highest term among the members that answer.
int leader(caf::actor_system& sys, const options& o) {
  caf::scoped_actor self{sys};
  std::string leader_ep;
  std::uint64_t term = 0;
  int up = 0;
  for (const auto& ep : o.endpoints) {
    auto colon = ep.rfind(':');
    if (colon == std::string::npos)
      continue;
    auto host = ep.substr(0, colon);
    auto port = static_cast<std::uint16_t>(std::atoi(ep.c_str() + colon + 1));
    caf::strong_actor_ptr ptr;
    self
      ->request(sys.middleman().actor_handle(), std::chrono::seconds{2},
                caf::connect_atom_v, host, port)
      .receive([&](const caf::node_id&, caf::strong_actor_ptr& p,
                   const std::set<std::string>&) { ptr = std::move(p); },
               [](caf::error&) {});
    if (!ptr)
      continue;
    auto srv = caf::actor_cast<actors::server_actor>(ptr);
    self
      ->request(srv, std::chrono::seconds{2}, atom::client_v, atom::status_v,
                bench_group)
      .receive(
        [&](actors::client_status& st) {
          ++up;
          if (st.term.value >= term) {
            term = st.term.value;
            if (st.role == static_cast<std::uint8_t>(raft::role::leader))
              leader_ep = ep;
          }
        },
        [](caf::error&) {});
  }
  json j = {{"system", "ees"},
            {"workload", "leader"},
            {"leader", leader_ep},
            {"term", term},
            {"up", up}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: ees_loadgen --endpoints E1,E2,E3 --workload "
               "put|get|lock|contended|failover-probe|fill|fill-locks|leader "
               "--concurrency N --duration-s S --value-size B [--keys K] "
               "[--clients N] [--warmup-s W] [--op-timeout-ms T] "
               "[--gap-ms G] [--direct-links 0|1]\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc)
      return usage();
    std::string v = argv[++i];
    if (arg == "--endpoints") {
      std::size_t start = 0;
      while (start < v.size()) {
        auto end = v.find(',', start);
        if (end == std::string::npos)
          end = v.size();
        o.endpoints.push_back(v.substr(start, end - start));
        start = end + 1;
      }
    } else if (arg == "--workload") {
      o.workload = v;
    } else if (arg == "--concurrency") {
      o.concurrency = std::max<std::size_t>(1, std::stoul(v));
    } else if (arg == "--duration-s") {
      o.duration_s = std::stod(v);
    } else if (arg == "--warmup-s") {
      o.warmup_s = std::stod(v);
    } else if (arg == "--value-size") {
      o.value_size = std::max<std::size_t>(1, std::stoul(v));
    } else if (arg == "--keys") {
      o.keys = std::max<std::size_t>(1, std::stoul(v));
    } else if (arg == "--clients") {
      o.clients = std::max<std::size_t>(1, std::stoul(v));
    } else if (arg == "--op-timeout-ms") {
      o.op_timeout = std::chrono::milliseconds{std::stol(v)};
    } else if (arg == "--gap-ms") {
      o.gap_ms = std::stod(v);
    } else if (arg == "--direct-links" && (v == "0" || v == "1")) {
      o.direct_links = v == "1";
    } else {
      return usage();
    }
  }
  if (o.endpoints.empty() || o.workload.empty() || o.duration_s <= 0)
    return usage();
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.add_message_types<caf::id_block::ees>();
  apps::configure_scheduler(cfg, 0);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  cluster::client_options co;
  co.endpoints = o.endpoints;
  co.timeout = o.op_timeout;
  co.attempt_timeout = std::min(o.op_timeout, std::chrono::milliseconds{1000});
  co.direct_links = o.direct_links;
  if (o.workload == "leader")
    return leader(sys, o);
  if (o.workload == "contended")
    return contended(sys, o, co);
  cluster::client cl{sys, co};
  if (o.workload == "put" || o.workload == "get")
    return put_or_get(cl, o, o.workload == "get");
  if (o.workload == "fill" || o.workload == "fill-locks")
    return fill(cl, o);
  if (o.workload == "lock")
    return locks(cl, o);
  if (o.workload == "failover-probe")
    return failover_probe(cl, o);
  return usage();
}
