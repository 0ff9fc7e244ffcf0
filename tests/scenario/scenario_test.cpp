// Data-driven scenario tests of the Raft core, after etcd-io/raft's
// interaction_test.go and rafttest/interaction_env*.go.
//
// A scenario file is a sequence of blocks:
//
//     # optional comment lines
//     command arg key=value key=(1,2,3)
//     ----
//     expected output
//     <blank line>
//
// Each file runs against a fresh in-memory cluster (tests/support/mem_cluster)
// and every command's output is compared with the golden text. Run with
// `--rewrite` (or EES_REWRITE=1) to regenerate the golden output; read the
// diff and only keep what you understand. After every command the cluster's
// safety invariants are checked; a violation or a script error fails the file
// even when rewriting.
//
// Commands (ids are node ids; several ids run the command on each in turn):
//
//   add-nodes <n> [voters=(ids)] [learners=(ids)] [election=<ticks>]
//             [heartbeat=<ticks>] [pre-vote=true|false]
//             [check-quorum=true|false] [broadcast-commit=true|false]
//             [max-entries=<n>] [max-inflight=<n>] [seed=<n>]
//       Adds n nodes with the next free ids. With voters/learners they found
//       the group with that membership; without, they join later with an
//       empty membership. Seeds default to the node id.
//   campaign <id>                      node::campaign
//   tick <id> <n>                      n ticks
//   tick-heartbeat <id>...             heartbeat_ticks ticks
//   tick-election <id>...              ticks the nodes in lockstep until the
//                                      role or term of one changes, at most
//                                      2 * election_ticks - 1 rounds
//   propose <id> <data>                node::propose ("quoted" data may hold
//                                      spaces)
//   propose-conf-change <id> add-learner|promote-learner|remove-node <node>
//   transfer-leadership <from> <to>    node::transfer_leadership on <from>
//   read-index <id> <context>          node::read_index
//   report-unreachable <id> <peer>     node::report_unreachable
//   process-ready <id>...              takes, persists, acks and prints a ready
//   deliver-msgs <id>... [type=<message_type>] [drop=(from ids)]
//       Steps the in-flight messages addressed to each id (only those of the
//       given type); messages from the `drop` senders are discarded instead.
//   drop-msgs <id>... [type=<message_type>] [from=(ids)]
//       Discards in-flight messages addressed to each id.
//   stabilize [<id>...]                process-ready / deliver-msgs in rounds
//                                      until nothing changes
//   partition <ids> | <ids> [| ...]    cuts every link between the groups
//   isolate <id>...                    cuts every link of the node
//   cut <a> <b>                        cuts one link
//   heal                               restores all links
//   crash <id>... / restart <id>...    loses / rebuilds a node (storage stays)
//   compact <id> <index>               log compaction up to index (§7)
//   status                             role, term, leader, indexes per node
//   log <id>...                        the node's log (durable log if crashed)
//   state-machine <id>...              the applied entries
//   progress <id>                      the leader's view of its followers
//   in-flight                          messages on the network
#include "tests/support/mem_cluster.hpp"

#include "protocol/raft/node.hpp"
#include "protocol/raft/progress.hpp"
#include "protocol/raft/types.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace ees::test {
namespace {

// -- script errors
// ------------------------------------------------------------------

/// A malformed command in a scenario file; fails the file.
struct script_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// -- command parsing
// ------------------------------------------------------------------

/// One parsed command line: positional arguments and key=value options.
struct command {
  std::string name;
  std::vector<std::string> args;
  std::map<std::string, std::string> options;
};

/// One word of a command line; quoted words are never options.
struct token {
  std::string text;
  bool quoted = false;
};

/// Splits at whitespace, keeping "quoted strings" and (parenthesized, lists)
/// together.
std::vector<token> tokenize(const std::string& line) {
  std::vector<token> result;
  token cur;
  auto in_token = false;
  auto depth = 0;
  auto quoted = false;
  for (auto ch : line) {
    if (quoted) {
      if (ch == '"')
        quoted = false;
      else
        cur.text += ch;
      continue;
    }
    if (ch == '"') {
      quoted = true;
      cur.quoted = true;
      in_token = true;
      continue;
    }
    if (ch == '(')
      ++depth;
    else if (ch == ')')
      --depth;
    if ((ch == ' ' || ch == '\t') && depth == 0) {
      if (in_token)
        result.push_back(cur);
      cur = token{};
      in_token = false;
      continue;
    }
    if (depth > 0 && (ch == ' ' || ch == '\t'))
      continue;
    cur.text += ch;
    in_token = true;
  }
  if (quoted)
    throw script_error("unterminated quote");
  if (depth != 0)
    throw script_error("unbalanced parentheses");
  if (in_token)
    result.push_back(cur);
  return result;
}

command parse_command(const std::string& line) {
  auto tokens = tokenize(line);
  if (tokens.empty())
    throw script_error("empty command");
  command cmd;
  cmd.name = tokens.front().text;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    auto eq = t.text.find('=');
    if (!t.quoted && eq != std::string::npos && eq > 0)
      cmd.options[t.text.substr(0, eq)] = t.text.substr(eq + 1);
    else
      cmd.args.push_back(t.text);
  }
  return cmd;
}

std::uint64_t parse_u64(const std::string& text, const std::string& what) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    throw script_error("expected a number for " + what + ", got '" + text
                       + "'");
  return std::stoull(text);
}

node_id parse_id(const std::string& text) {
  auto v = parse_u64(text, "node id");
  if (v == 0)
    throw script_error("node id 0 is reserved");
  return node_id{v};
}

/// Parses "(1,2,3)" or "1" into ids.
std::set<node_id> parse_id_list(const std::string& text) {
  auto body = text;
  if (!body.empty() && body.front() == '(') {
    if (body.back() != ')')
      throw script_error("malformed id list '" + text + "'");
    body = body.substr(1, body.size() - 2);
  }
  std::set<node_id> result;
  std::stringstream in(body);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty())
      result.insert(parse_id(item));
  return result;
}

bool parse_bool(const std::string& text, const std::string& what) {
  if (text == "true")
    return true;
  if (text == "false")
    return false;
  throw script_error("expected true or false for " + what);
}

raft::message_type parse_message_type(const std::string& text) {
  for (std::uint8_t i = 0;
       i <= static_cast<std::uint8_t>(raft::message_type::timeout_now); ++i) {
    auto t = static_cast<raft::message_type>(i);
    if (text == raft::to_string(t))
      return t;
  }
  throw script_error("unknown message type '" + text + "'");
}

// -- the environment
// ------------------------------------------------------------------

std::string errc_text(raft::raft_errc e) {
  if (e == raft::raft_errc::ok)
    return "ok";
  return std::string{"error: "} + raft::to_string(e);
}

/// Runs the commands of one scenario file against a fresh cluster.
class scenario_env {
public:
  scenario_env() {
    cluster_.hooks.on_ready = [this](node_id id, const raft::ready& rd) {
      taken_ = std::make_pair(id, rd);
    };
    cluster_.hooks.on_deliver
      = [this](const raft::message& m, raft::raft_errc result) {
          out_ << "  " << raft::describe(m);
          if (result != raft::raft_errc::ok)
            out_ << " => " << raft::to_string(result);
          out_ << '\n';
        };
    cluster_.hooks.on_drop = [this](const raft::message& m, drop_reason why) {
      if (processing_)
        send_drops_.emplace_back(m, why);
      else
        out_ << "  dropped: " << raft::describe(m) << " (" << to_string(why)
             << ")\n";
    };
  }

  /// Runs one command line and returns its output (never empty).
  /// @throws script_error or std::exception on malformed commands and
  ///         harness contract breaches.
  std::string run(const std::string& line) {
    out_.str({});
    out_.clear();
    dispatch(parse_command(line));
    auto result = out_.str();
    if (result.empty())
      result = "ok\n";
    return result;
  }

  /// Safety invariants after a command; empty when they hold.
  std::string check() {
    return cluster_.check_invariants();
  }

private:
  // -- printing
  // -------------------------------------------------------------------

  /// Runs the ready loop of `id` once and prints the ready, marking the
  /// messages the network dropped as they were sent.
  bool process(node_id id) {
    taken_.reset();
    send_drops_.clear();
    processing_ = true;
    auto had_ready = false;
    try {
      had_ready = cluster_.process_ready(id);
    } catch (...) {
      processing_ = false;
      flush_ready();
      throw;
    }
    processing_ = false;
    flush_ready();
    return had_ready;
  }

  void flush_ready() {
    if (taken_)
      print_ready(taken_->first, taken_->second);
    for (std::size_t i = next_drop_; i < send_drops_.size(); ++i)
      out_ << "  dropped: " << raft::describe(send_drops_[i].first) << " ("
           << to_string(send_drops_[i].second) << ")\n";
    taken_.reset();
    send_drops_.clear();
    next_drop_ = 0;
  }

  void print_ready(node_id id, const raft::ready& rd) {
    out_ << "> " << id.value << " ready\n";
    if (rd.soft)
      out_ << "  soft: " << raft::to_string(rd.soft->current_role)
           << " term=" << rd.soft->term.value
           << " leader=" << rd.soft->leader.value << '\n';
    if (rd.state)
      out_ << "  hard: term=" << rd.state->current_term.value
           << " vote=" << rd.state->voted_for.value
           << " commit=" << rd.state->commit_index.value << '\n';
    if (rd.snapshot)
      out_ << "  snapshot: " << rd.snapshot->last_term.value << '/'
           << rd.snapshot->last_index.value << ' '
           << describe(rd.snapshot->config) << '\n';
    print_entries("entries", rd.entries);
    print_messages("messages", rd.messages);
    print_messages("after persist", rd.messages_after_persist);
    print_entries("committed", rd.committed);
    if (!rd.read_states.empty()) {
      out_ << "  read states:\n";
      for (const auto& r : rd.read_states)
        out_ << "    index=" << r.index.value << " context=" << r.context
             << '\n';
    }
  }

  void print_entries(const char* title,
                     const std::vector<raft::log_entry>& es) {
    if (es.empty())
      return;
    out_ << "  " << title << ":\n";
    for (const auto& e : es)
      out_ << "    " << describe(e) << '\n';
  }

  void print_messages(const char* title, const std::vector<raft::message>& ms) {
    if (ms.empty())
      return;
    out_ << "  " << title << ":\n";
    for (const auto& m : ms) {
      out_ << "    " << raft::describe(m);
      // Drops at send time arrive in send order: messages, then after persist.
      if (next_drop_ < send_drops_.size() && send_drops_[next_drop_].first == m)
        out_ << " (dropped: " << to_string(send_drops_[next_drop_++].second)
             << ')';
      out_ << '\n';
    }
  }

  void print_status() {
    for (auto id : cluster_.ids()) {
      const auto& n = cluster_.at(id);
      out_ << id.value << ": ";
      if (!n.alive()) {
        out_ << "crashed\n";
        continue;
      }
      const auto& c = *n.core;
      out_ << raft::to_string(c.current_role())
           << " term=" << c.current_term().value
           << " vote=" << c.voted_for().value << " leader=" << c.leader().value
           << " commit=" << c.commit_index().value
           << " applied=" << c.applied_index().value
           << " last=" << c.log().last_index().value << ' '
           << describe(c.config()) << '\n';
    }
  }

  void print_log(node_id id) {
    const auto& n = cluster_.at(id);
    if (!n.alive()) {
      const auto& s = n.storage;
      out_ << id.value << ": crashed; durable storage:\n";
      out_ << "  hard: term=" << s.state.current_term.value
           << " vote=" << s.state.voted_for.value
           << " commit=" << s.state.commit_index.value << '\n';
      out_ << "  snapshot: " << s.snapshot.last_term.value << '/'
           << s.snapshot.last_index.value << ' ' << describe(s.snapshot.config)
           << '\n';
      for (const auto& e : s.entries)
        out_ << "  " << describe(e) << '\n';
      return;
    }
    const auto& log = n.core->log();
    out_ << id.value << ": snapshot " << log.snapshot_term().value << '/'
         << log.snapshot_index().value << ' ' << describe(log.snapshot().config)
         << '\n';
    for (auto i = log.first_index(); i <= log.last_index(); ++i) {
      out_ << "  " << describe(log.at(i));
      if (i > log.durable_index())
        out_ << " (not durable)";
      out_ << '\n';
    }
  }

  void print_state_machine(node_id id) {
    const auto& n = cluster_.at(id);
    if (!n.alive()) {
      out_ << id.value << ": crashed\n";
      return;
    }
    out_ << id.value << ": applied " << n.applied.size() << '\n';
    for (const auto& e : n.applied)
      if (e.type == raft::entry_type::normal)
        out_ << "  " << describe(e) << '\n';
  }

  void print_progress(node_id id) {
    const auto& c = cluster_.core(id);
    if (c.current_role() != raft::role::leader) {
      out_ << id.value << " is not the leader\n";
      return;
    }
    std::set<node_id> peers = c.config().voters;
    peers.insert(c.config().learners.begin(), c.config().learners.end());
    for (auto peer : peers) {
      auto pr = c.progress_of(peer);
      out_ << peer.value << ": ";
      if (pr == nullptr) {
        out_ << "no progress\n";
        continue;
      }
      out_ << raft::to_string(pr->state) << " match=" << pr->match.value
           << " next=" << pr->next.value;
      if (pr->state == raft::progress_state::snapshot)
        out_ << " pending_snapshot=" << pr->pending_snapshot.value;
      if (pr->is_learner)
        out_ << " learner";
      out_ << '\n';
    }
  }

  // -- commands
  // -----------------------------------------------------------------

  static void expect_args(const command& cmd, std::size_t lo, std::size_t hi) {
    if (cmd.args.size() < lo || cmd.args.size() > hi)
      throw script_error(cmd.name + ": wrong number of arguments");
  }

  static void allow_options(const command& cmd,
                            const std::set<std::string>& allowed) {
    for (const auto& kv : cmd.options)
      if (allowed.count(kv.first) == 0)
        throw script_error(cmd.name + ": unknown option '" + kv.first + "'");
  }

  std::vector<node_id> ids_of(const command& cmd) {
    std::vector<node_id> result;
    for (const auto& a : cmd.args)
      result.push_back(parse_id(a));
    return result;
  }

  void dispatch(const command& cmd) {
    const auto& n = cmd.name;
    if (n == "add-nodes")
      return add_nodes(cmd);
    if (n == "campaign") {
      expect_args(cmd, 1, 1);
      out_ << errc_text(cluster_.core(parse_id(cmd.args[0])).campaign())
           << '\n';
      return;
    }
    if (n == "tick") {
      expect_args(cmd, 2, 2);
      auto id = parse_id(cmd.args[0]);
      cluster_.tick(
        id, static_cast<std::uint32_t>(parse_u64(cmd.args[1], "tick count")));
      print_role(id);
      return;
    }
    if (n == "tick-heartbeat") {
      expect_args(cmd, 1, SIZE_MAX);
      for (auto id : ids_of(cmd)) {
        cluster_.tick_heartbeat(id);
        print_role(id);
      }
      return;
    }
    if (n == "tick-election") {
      expect_args(cmd, 1, SIZE_MAX);
      auto ids = ids_of(cmd);
      out_ << "ticks=" << cluster_.tick_election(ids) << '\n';
      for (auto id : ids)
        print_role(id);
      return;
    }
    if (n == "propose") {
      expect_args(cmd, 2, 2);
      print_propose(cluster_.core(parse_id(cmd.args[0])).propose(cmd.args[1]));
      return;
    }
    if (n == "propose-conf-change")
      return propose_conf_change(cmd);
    if (n == "transfer-leadership") {
      expect_args(cmd, 2, 2);
      out_ << errc_text(cluster_.core(parse_id(cmd.args[0]))
                          .transfer_leadership(parse_id(cmd.args[1])))
           << '\n';
      return;
    }
    if (n == "read-index") {
      expect_args(cmd, 2, 2);
      out_ << errc_text(cluster_.core(parse_id(cmd.args[0]))
                          .read_index(parse_u64(cmd.args[1], "context")))
           << '\n';
      return;
    }
    if (n == "report-unreachable") {
      expect_args(cmd, 2, 2);
      cluster_.core(parse_id(cmd.args[0]))
        .report_unreachable(parse_id(cmd.args[1]));
      return;
    }
    if (n == "process-ready") {
      expect_args(cmd, 1, SIZE_MAX);
      for (auto id : ids_of(cmd))
        if (!process(id))
          out_ << "> " << id.value << " no ready\n";
      return;
    }
    if (n == "deliver-msgs")
      return deliver_msgs(cmd);
    if (n == "drop-msgs")
      return drop_msgs(cmd);
    if (n == "stabilize")
      return stabilize(cmd);
    if (n == "partition")
      return partition(cmd);
    if (n == "isolate") {
      expect_args(cmd, 1, SIZE_MAX);
      for (auto id : ids_of(cmd))
        cluster_.isolate(id);
      return;
    }
    if (n == "cut") {
      expect_args(cmd, 2, 2);
      cluster_.cut(parse_id(cmd.args[0]), parse_id(cmd.args[1]));
      return;
    }
    if (n == "heal") {
      expect_args(cmd, 0, 0);
      cluster_.heal();
      return;
    }
    if (n == "crash") {
      expect_args(cmd, 1, SIZE_MAX);
      for (auto id : ids_of(cmd))
        cluster_.crash(id);
      return;
    }
    if (n == "restart") {
      expect_args(cmd, 1, SIZE_MAX);
      for (auto id : ids_of(cmd)) {
        cluster_.restart(id);
        print_role(id);
      }
      return;
    }
    if (n == "compact") {
      expect_args(cmd, 2, 2);
      auto id = parse_id(cmd.args[0]);
      auto r = cluster_.compact(id, log_index{parse_u64(cmd.args[1], "index")});
      out_ << errc_text(r) << '\n';
      if (r == raft::raft_errc::ok)
        print_log(id);
      return;
    }
    if (n == "status") {
      expect_args(cmd, 0, 0);
      print_status();
      return;
    }
    if (n == "log") {
      expect_args(cmd, 1, SIZE_MAX);
      for (auto id : ids_of(cmd))
        print_log(id);
      return;
    }
    if (n == "state-machine") {
      expect_args(cmd, 1, SIZE_MAX);
      for (auto id : ids_of(cmd))
        print_state_machine(id);
      return;
    }
    if (n == "progress") {
      expect_args(cmd, 1, 1);
      print_progress(parse_id(cmd.args[0]));
      return;
    }
    if (n == "in-flight") {
      expect_args(cmd, 0, 0);
      for (const auto& m : cluster_.in_flight())
        out_ << raft::describe(m) << '\n';
      if (cluster_.in_flight().empty())
        out_ << "none\n";
      return;
    }
    throw script_error("unknown command '" + n + "'");
  }

  void print_role(node_id id) {
    const auto& c = cluster_.core(id);
    out_ << id.value << ": " << raft::to_string(c.current_role())
         << " term=" << c.current_term().value << " leader=" << c.leader().value
         << '\n';
  }

  void print_propose(const raft::propose_result& r) {
    if (r.error != raft::raft_errc::ok)
      out_ << errc_text(r.error) << '\n';
    else
      out_ << "index=" << r.index.value << " term=" << r.term.value << '\n';
  }

  void add_nodes(const command& cmd) {
    expect_args(cmd, 1, 1);
    allow_options(cmd, {"voters", "learners", "election", "heartbeat",
                        "pre-vote", "check-quorum", "broadcast-commit",
                        "max-entries", "max-inflight", "seed"});
    auto count = parse_u64(cmd.args[0], "node count");
    raft::raft_config cfg;
    auto opt = [&](const char* key) -> const std::string* {
      auto i = cmd.options.find(key);
      return i == cmd.options.end() ? nullptr : &i->second;
    };
    if (auto v = opt("election"))
      cfg.election_ticks
        = static_cast<std::uint32_t>(parse_u64(*v, "election"));
    if (auto v = opt("heartbeat"))
      cfg.heartbeat_ticks
        = static_cast<std::uint32_t>(parse_u64(*v, "heartbeat"));
    if (auto v = opt("pre-vote"))
      cfg.pre_vote = parse_bool(*v, "pre-vote");
    if (auto v = opt("check-quorum"))
      cfg.check_quorum = parse_bool(*v, "check-quorum");
    if (auto v = opt("broadcast-commit"))
      cfg.broadcast_commit = parse_bool(*v, "broadcast-commit");
    if (auto v = opt("max-entries"))
      cfg.max_entries_per_append = parse_u64(*v, "max-entries");
    if (auto v = opt("max-inflight"))
      cfg.max_inflight = parse_u64(*v, "max-inflight");
    std::optional<std::uint64_t> seed;
    if (auto v = opt("seed"))
      seed = parse_u64(*v, "seed");
    raft::membership m;
    if (auto v = opt("voters"))
      m.voters = parse_id_list(*v);
    if (auto v = opt("learners"))
      m.learners = parse_id_list(*v);
    auto next = cluster_.ids().empty() ? 1 : cluster_.ids().back().value + 1;
    for (std::uint64_t i = 0; i < count; ++i) {
      cfg.id = node_id{next + i};
      cfg.seed = seed ? *seed : cfg.id.value;
      cluster_.add_node(cfg, m);
      out_ << cfg.id.value << ": " << describe(m) << '\n';
    }
  }

  void propose_conf_change(const command& cmd) {
    expect_args(cmd, 3, 3);
    raft::conf_change cc;
    const auto& op = cmd.args[1];
    if (op == "add-learner")
      cc.op = raft::conf_change::kind::add_learner;
    else if (op == "promote-learner")
      cc.op = raft::conf_change::kind::promote_learner;
    else if (op == "remove-node")
      cc.op = raft::conf_change::kind::remove_node;
    else
      throw script_error("unknown conf change '" + op + "'");
    cc.node = parse_id(cmd.args[2]);
    print_propose(cluster_.core(parse_id(cmd.args[0])).propose_conf_change(cc));
  }

  message_filter type_filter(const command& cmd) {
    auto i = cmd.options.find("type");
    if (i == cmd.options.end())
      return {};
    auto t = parse_message_type(i->second);
    return [t](const raft::message& m) {
      return m.type == t;
    };
  }

  void deliver_msgs(const command& cmd) {
    expect_args(cmd, 1, SIZE_MAX);
    allow_options(cmd, {"type", "drop"});
    auto select = type_filter(cmd);
    std::set<node_id> drop_from;
    if (auto i = cmd.options.find("drop"); i != cmd.options.end())
      drop_from = parse_id_list(i->second);
    for (auto id : ids_of(cmd)) {
      if (!drop_from.empty())
        cluster_.drop(id, [&](const raft::message& m) {
          return drop_from.count(m.from) > 0 && (!select || select(m));
        });
      deliver_to(id, select);
    }
  }

  void deliver_to(node_id id, const message_filter& select) {
    auto pending
      = std::count_if(cluster_.in_flight().begin(), cluster_.in_flight().end(),
                      [&](const raft::message& m) {
                        return m.to == id && (!select || select(m));
                      });
    if (pending == 0)
      return;
    out_ << "> " << id.value << " receiving\n";
    cluster_.deliver(id, select);
  }

  void drop_msgs(const command& cmd) {
    expect_args(cmd, 1, SIZE_MAX);
    allow_options(cmd, {"type", "from"});
    auto select = type_filter(cmd);
    std::set<node_id> from;
    if (auto i = cmd.options.find("from"); i != cmd.options.end())
      from = parse_id_list(i->second);
    for (auto id : ids_of(cmd))
      cluster_.drop(id, [&](const raft::message& m) {
        return (from.empty() || from.count(m.from) > 0)
               && (!select || select(m));
      });
  }

  // Mirrors mem_cluster::stabilize, printing a header per receiving node.
  void stabilize(const command& cmd) {
    auto ids = cmd.args.empty() ? cluster_.ids() : ids_of(cmd);
    constexpr std::size_t max_rounds = 1000;
    for (std::size_t round = 0; round < max_rounds; ++round) {
      auto busy = false;
      for (auto id : ids)
        if (process(id))
          busy = true;
      for (auto id : ids)
        if (cluster_.pending_for(id) > 0) {
          deliver_to(id, {});
          busy = true;
        }
      if (!busy)
        return;
    }
    throw std::runtime_error("stabilize: not quiet after 1000 rounds");
  }

  void partition(const command& cmd) {
    std::vector<std::set<node_id>> groups(1);
    for (const auto& a : cmd.args) {
      if (a == "|")
        groups.emplace_back();
      else
        groups.back().insert(parse_id(a));
    }
    if (groups.size() < 2)
      throw script_error("partition: expected groups separated by '|'");
    cluster_.partition(groups);
  }

  mem_cluster cluster_;
  std::ostringstream out_;
  /// The ready taken inside `process`, printed once its sends are known.
  std::optional<std::pair<node_id, raft::ready>> taken_;
  /// Messages the network dropped while `process` sent them.
  std::vector<std::pair<raft::message, drop_reason>> send_drops_;
  std::size_t next_drop_ = 0;
  bool processing_ = false;
};

// -- scenario files
// -------------------------------------------------------------------

/// One command with its golden output and the lines preceding it.
struct block {
  std::vector<std::string> preamble; ///< Comments and extra blank lines.
  std::string command;
  std::size_t line = 0; ///< Line number of the command (1-based).
  std::string expected;
};

struct scenario_file {
  std::vector<block> blocks;
  std::vector<std::string> epilogue;
};

scenario_file parse_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot open " + path.string());
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  scenario_file f;
  std::vector<std::string> preamble;
  for (std::size_t i = 0; i < lines.size();) {
    const auto& l = lines[i];
    if (l.empty() || l.front() == '#') {
      preamble.push_back(l);
      ++i;
      continue;
    }
    block b;
    b.preamble = std::move(preamble);
    preamble.clear();
    b.command = l;
    b.line = i + 1;
    ++i;
    if (i >= lines.size() || lines[i] != "----")
      throw std::runtime_error(path.filename().string() + ":"
                               + std::to_string(b.line)
                               + ": expected '----' after the command");
    ++i;
    while (i < lines.size() && !lines[i].empty()) {
      b.expected += lines[i] + '\n';
      ++i;
    }
    if (i < lines.size())
      ++i; // the blank line ending the block
    f.blocks.push_back(std::move(b));
  }
  f.epilogue = std::move(preamble);
  return f;
}

void write_file(const fs::path& path, const scenario_file& f,
                const std::vector<std::string>& outputs) {
  std::ostringstream out;
  for (std::size_t i = 0; i < f.blocks.size(); ++i) {
    const auto& b = f.blocks[i];
    for (const auto& p : b.preamble)
      out << p << '\n';
    out << b.command << "\n----\n" << outputs[i];
    if (i + 1 < f.blocks.size() || !f.epilogue.empty())
      out << '\n';
  }
  for (const auto& p : f.epilogue)
    out << p << '\n';
  std::ofstream file(path, std::ios::trunc);
  file << out.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> result;
  std::stringstream in(text);
  for (std::string l; std::getline(in, l);)
    result.push_back(l);
  return result;
}

/// A line diff (LCS) with '-' for expected and '+' for actual lines.
std::string line_diff(const std::string& expected, const std::string& actual) {
  auto a = split_lines(expected);
  auto b = split_lines(actual);
  std::vector<std::vector<std::size_t>> lcs(
    a.size() + 1, std::vector<std::size_t>(b.size() + 1, 0));
  for (auto i = a.size(); i-- > 0;)
    for (auto j = b.size(); j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1
                               : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::ostringstream out;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      out << "     " << a[i] << '\n';
      ++i;
      ++j;
    } else if (i < a.size()
               && (j == b.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out << "    -" << a[i] << '\n';
      ++i;
    } else {
      out << "    +" << b[j] << '\n';
      ++j;
    }
  }
  return out.str();
}

/// Runs one file; returns true when it passed (or was rewritten cleanly).
bool run_file(const fs::path& path, bool rewrite) {
  auto name = path.filename().string();
  scenario_file f;
  try {
    f = parse_file(path);
  } catch (const std::exception& e) {
    std::cout << "FAIL " << name << ": " << e.what() << '\n';
    return false;
  }
  scenario_env env;
  std::vector<std::string> outputs;
  std::ostringstream report;
  std::size_t mismatches = 0;
  auto broken = false;
  constexpr std::size_t max_reported = 3;
  for (const auto& b : f.blocks) {
    std::string actual;
    std::string failure;
    try {
      actual = env.run(b.command);
      if (auto v = env.check(); !v.empty()) {
        failure = "invariant violated: " + v;
        actual += "INVARIANT VIOLATED: " + v + '\n';
      }
    } catch (const script_error& e) {
      failure = std::string{"script error: "} + e.what();
      actual = "SCRIPT ERROR: " + std::string{e.what()} + '\n';
    } catch (const std::exception& e) {
      failure = std::string{"harness error: "} + e.what();
      actual = "HARNESS ERROR: " + std::string{e.what()} + '\n';
    }
    outputs.push_back(actual);
    if (!failure.empty()) {
      broken = true;
      report << "  " << name << ':' << b.line << ": " << b.command << "\n    "
             << failure << '\n';
    }
    if (actual != b.expected && !rewrite) {
      if (++mismatches <= max_reported)
        report << "  " << name << ':' << b.line << ": " << b.command
               << "\n    output differs (-expected +actual):\n"
               << line_diff(b.expected, actual);
    }
    if (broken)
      break; // later output would only repeat the failure's consequences
  }
  if (broken) {
    // Keep the blocks after the failure unchanged when rewriting.
    for (auto i = outputs.size(); i < f.blocks.size(); ++i)
      outputs.push_back(f.blocks[i].expected);
  }
  if (mismatches > max_reported)
    report << "  ... and " << mismatches - max_reported
           << " more blocks differ\n";
  if (rewrite)
    write_file(path, f, outputs);
  auto ok = !broken && mismatches == 0;
  std::cout << (ok ? (rewrite ? "REWROTE " : "PASS ") : "FAIL ") << name << " ("
            << f.blocks.size() << " commands)\n";
  if (!ok)
    std::cout << report.str();
  return ok;
}

} // namespace
} // namespace ees::test

int main(int argc, char** argv) {
  auto rewrite = false;
  if (const char* env = std::getenv("EES_REWRITE"))
    rewrite = std::string{env} == "1" || std::string{env} == "true";
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--rewrite" || arg == "-rewrite") {
      rewrite = true;
      continue;
    }
    fs::path p{arg};
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().extension() == ".txt")
          files.push_back(e.path());
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::cerr << "scenario_test: no such file or directory: " << arg << '\n';
      return 2;
    }
  }
  if (files.empty()) {
    std::cerr << "usage: scenario_test [--rewrite] <dir-or-file>...\n"
                 "  (EES_REWRITE=1 also rewrites the golden output)\n";
    return 2;
  }
  std::sort(files.begin(), files.end());
  std::size_t failed = 0;
  for (const auto& f : files)
    if (!ees::test::run_file(f, rewrite))
      ++failed;
  std::cout << "scenario: " << files.size() - failed << " passed, " << failed
            << " failed\n";
  return failed == 0 ? 0 : 1;
}
