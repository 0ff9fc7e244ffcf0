// Shared pieces of the actor tests: temporary data directories, the
// configuration of CAF's deterministic scheduler, and the base fixture of
// servers in one actor system ticked by hand.
#pragma once

#include "actors/interfaces.hpp"
#include "actors/type_ids.hpp"
#include "ees/cluster/raft_server_factory.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <doctest/doctest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace ees::test {

/// A fresh temporary directory, removed in the destructor.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string templ
      = (std::filesystem::temp_directory_path() / "ees-actors-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Configures `cfg` for CAF's deterministic test scheduler (no real time;
/// style-and-architecture.md §12) with the ees message types.
inline caf::actor_system_config&
deterministic_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"))
    .set("logger.file-verbosity", caf::atom("quiet"))
    .set("logger.console-verbosity", caf::atom("quiet"));
  cfg.add_message_types<caf::id_block::ees>();
  return cfg;
}

/// Servers of one actor system on CAF's deterministic scheduler: no real
/// time, every step run by hand (style-and-architecture.md §12). Server i is
/// node i + 1 with its data in dirs[i].
struct actor_fixture {
  /// One Raft tick (the heartbeat interval) in simulated time.
  static constexpr std::chrono::milliseconds tick_length{10};

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  std::vector<std::unique_ptr<temp_dir>> dirs;
  std::vector<cluster::raft_server> servers;

  actor_fixture()
    : sys{deterministic_config(cfg)},
      sched{dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())},
      self{sys} {
    spdlog::set_level(spdlog::level::warn);
  }

  ~actor_fixture() {
    // §12 gotcha: stop everything and drain before the system goes away.
    for (auto& s : servers)
      cluster::stop_raft_server(s);
    sched.run();
  }

  /// The settings of server `i` (a fresh data dir is made when missing):
  /// throw-away data without fsync, storage on the test scheduler.
  cluster::raft_server_settings settings(std::size_t i) {
    while (dirs.size() <= i)
      dirs.push_back(std::make_unique<temp_dir>());
    cluster::raft_server_settings s;
    s.id = node_id{i + 1};
    s.data_dir = dirs[i]->path.string();
    s.tick_ms = static_cast<std::uint32_t>(tick_length.count());
    s.election_ticks = 5;
    s.sync = false;
    s.detached_storage = false;
    return s;
  }

  /// Starts a server with `s` and runs it up.
  cluster::raft_server start(const cluster::raft_server_settings& s) {
    auto srv = cluster::start_raft_server(sys, s);
    REQUIRE(srv);
    sched.run();
    return *srv;
  }

  /// Advances logical time by `n` ticks, running everything in between.
  void tick(int n = 1) {
    for (int i = 0; i < n; ++i) {
      sched.advance_time(tick_length);
      sched.run();
    }
  }

  /// Sends a request, runs `ticks` ticks and returns the reply (or error).
  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(int ticks, const Handle& dest, Ts&&... xs) {
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    sched.run();
    tick(ticks);
    caf::expected<T> out{caf::make_error(caf::sec::request_timeout)};
    if (self->mailbox().empty())
      return out; // No answer yet; never block the only thread.
    std::move(handle).receive([&](T& x) { out = std::move(x); },
                              [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  caf::expected<actors::replica_status> status(std::size_t i, group_id g) {
    return ask<actors::replica_status>(0, servers[i].server, atom::status_v, g);
  }

  /// Every started server as a voter.
  raft::membership voters() {
    raft::membership m;
    for (std::size_t i = 0; i < servers.size(); ++i)
      m.voters.insert(node_id{i + 1});
    return m;
  }

  /// Ticks until all servers (or those in `among`) agree on one leader of
  /// `g`; returns its index.
  std::optional<std::size_t> await_leader(group_id g, int max_ticks = 200,
                                          std::vector<std::size_t> among = {}) {
    if (among.empty())
      for (std::size_t i = 0; i < servers.size(); ++i)
        among.push_back(i);
    for (int t = 0; t < max_ticks; ++t) {
      tick();
      std::optional<node_id> leader;
      bool agreed = true;
      for (auto i : among) {
        auto st = status(i, g);
        if (!st || st->leader == no_node || (leader && *leader != st->leader)) {
          agreed = false;
          break;
        }
        leader = st->leader;
      }
      if (agreed && leader)
        return leader->value - 1;
    }
    return std::nullopt;
  }
};

/// Lines of spdlog's default logger, from its construction to its
/// destruction (it hooks itself into the logger and lowers the level to
/// info meanwhile), that a test can wait for, bounded.
class log_watch {
public:
  log_watch() : saved_level_(spdlog::default_logger()->level()) {
    spdlog::default_logger()->sinks().push_back(sink_);
    spdlog::set_level(spdlog::level::info);
  }
  ~log_watch() {
    spdlog::default_logger()->sinks().pop_back();
    spdlog::set_level(saved_level_);
  }
  log_watch(const log_watch&) = delete;
  log_watch& operator=(const log_watch&) = delete;

  /// Whether a line containing `text` was logged, waiting up to `bound`.
  bool wait_for(const std::string& text, std::chrono::milliseconds bound) {
    return sink_->wait_for(text, bound);
  }

  /// Every line logged so far, one after the other.
  std::string text() {
    return sink_->text();
  }

private:
  class sink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    bool wait_for(const std::string& text, std::chrono::milliseconds bound) {
      std::unique_lock<std::mutex> guard{lines_mtx_};
      return logged_.wait_for(guard, bound, [&] {
        return std::any_of(lines_.begin(), lines_.end(), [&](auto& line) {
          return line.find(text) != std::string::npos;
        });
      });
    }

    std::string text() {
      std::lock_guard<std::mutex> guard{lines_mtx_};
      std::string out;
      for (const auto& line : lines_)
        out += line + "\n";
      return out;
    }

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      {
        std::lock_guard<std::mutex> guard{lines_mtx_};
        lines_.emplace_back(msg.payload.data(), msg.payload.size());
      }
      logged_.notify_all();
    }
    void flush_() override {}

  private:
    std::mutex lines_mtx_;
    std::condition_variable logged_;
    std::vector<std::string> lines_;
  };

  spdlog::level::level_enum saved_level_;
  std::shared_ptr<sink> sink_ = std::make_shared<sink>();
};

} // namespace ees::test
