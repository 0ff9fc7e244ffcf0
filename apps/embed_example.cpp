// embed-example: a host process embedding ees-cluster.
//
// Shows the embedding API: the host owns its caf::actor_system, starts a
// RaftServer in it with `start_raft_server`, registers a group at runtime with
// its own state machine (a tiny key-value map) and submits commands. The
// group here has one voter, this node, so the example needs no peers; a
// multi-node group registers the same way on every node and connects the
// servers (see apps/ees-node.cpp and actors/transport.hpp).
//
// Usage: embed-example DATA_DIR   (run it twice: the map survives a restart)

#include "actors/interfaces.hpp"
#include "actors/type_ids.hpp"
#include "ees/cluster/raft_server_factory.hpp"
#include "ees/cluster/state_machine.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>

namespace {

using namespace ees;
using namespace std::chrono_literals;

/// The host's state machine: "set KEY VALUE" commands on a map. Deterministic:
/// apply depends only on the command and the current state.
class kv_machine : public cluster::state_machine {
public:
  std::string apply(const cluster::entry_context&,
                    const std::string& command) override {
    std::istringstream in{command};
    std::string op, key, value;
    in >> op >> key >> value;
    if (op != "set" || key.empty())
      return "error: expected 'set KEY VALUE'";
    auto& slot = map_[key];
    auto old = slot;
    slot = value;
    return old.empty() ? "created" : "replaced " + old;
  }
  std::string snapshot() override {
    std::string out;
    for (const auto& [k, v] : map_)
      out += k + ' ' + v + '\n';
    return out;
  }
  void restore(const std::string& data) override {
    map_.clear();
    std::istringstream in{data};
    std::string k, v;
    while (in >> k >> v)
      map_[k] = v;
  }
  void on_leader_start(term_t term) override {
    std::printf("  (this node leads the group, term %llu)\n",
                static_cast<unsigned long long>(term.value));
  }
  std::size_t size() const {
    return map_.size();
  }

private:
  std::map<std::string, std::string> map_;
};

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::ees>();
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  cluster::raft_server_settings settings;
  settings.id = node_id{1};
  settings.data_dir = argv[1];
  settings.tick_ms = 20;
  auto srv = cluster::start_raft_server(sys, settings);
  if (!srv) {
    std::fprintf(stderr, "cannot start: %s\n", sys.render(srv.error()).c_str());
    return 1;
  }
  caf::scoped_actor self{sys};
  group_id group{42};
  raft::membership voters;
  voters.voters.insert(node_id{1});
  auto machine = std::make_shared<kv_machine>();
  auto ok = false;
  self
    ->request(srv->server, 10s, atom::register__v, group, voters,
              cluster::state_machine_ptr{machine})
    .receive([&](caf::ok_atom) { ok = true; },
             [&](caf::error& err) {
               std::fprintf(stderr, "register failed: %s\n",
                            sys.render(err).c_str());
             });
  std::printf("registered group %llu\n",
              static_cast<unsigned long long>(group.value));
  // Submit commands; until the group has elected its leader (one election
  // timeout) the replica answers not_leader, so retry within a deadline.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (const char* command :
       {"set lamp on", "set door closed", "set lamp off"}) {
    auto done = false;
    while (ok && !done && std::chrono::steady_clock::now() < deadline) {
      self
        ->request(srv->server, 2s, atom::propose_v, group, std::string{command})
        .receive(
          [&](const std::string& result) {
            std::printf("%-16s -> %s\n", command, result.c_str());
            done = true;
          },
          [&](caf::error&) { self->receive(caf::after(50ms) >> [] {}); });
    }
    ok = ok && done;
  }
  std::printf("state machine holds %zu keys\n", machine->size());
  cluster::stop_raft_server(*srv);
  return ok ? 0 : 1;
}
