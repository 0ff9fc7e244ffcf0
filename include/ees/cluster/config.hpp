// Node configuration: the seed's `ees.cluster.raft.*` keys plus node identity,
// addresses and TLS (DESIGN.md §6), read from a `.properties` or `.yaml` file
// and overridden on the command line.
//
// Loading is three steps, each usable on its own: parse a text into a flat
// map of dotted keys (`parse_properties`, `parse_yaml`), merge command-line
// overrides into it (`parse_overrides`, `apply_overrides`), and type and
// range-check every key (`validate`). Bad input is never an exception or a
// crash: every step returns a `result` holding either the value or all the
// errors it found, each naming its key and where the key was set.
//
// Key reference (defaults in brackets; * = required):
//
//   ees.cluster.node-id*                 this node's id, an integer > 0
//   ees.cluster.rack, ees.cluster.zone   placement labels ["default"]
//   ees.cluster.listen*                  host:port this node listens on
//   ees.cluster.peers[N]                 id@host:port of another node; also
//                                        `ees.cluster.peers=id@h:p,...` or,
//                                        in YAML, a map `peers: {id: h:p}`
//   ees.cluster.raft.data-dir*           directory of logs and snapshots
//   ees.cluster.raft.groups[app].peers[i]  node ids of the group of `app`
//                                        (1..7, unique, known); also
//                                        `...groups[app].peers=1,2,3`
//   ees.cluster.raft.peer-count          3 or 5 [3]
//   ees.cluster.raft.heartbeat-ms        10..10000 [100]
//   ees.cluster.raft.election-ms         >= 3 * heartbeat-ms, <= 60000 [1000]
//   ees.cluster.raft.rpc-timeout-ms      10..60000 [1000]
//   ees.cluster.scheduler.threads        CAF worker threads, 0..256; 0 is
//                                        half the cores, at least 2 [0]
//   ees.cluster.raft.direct-links        true | false [true]: Raft batches
//                                        between nodes over direct TCP
//                                        links (never with TLS)
//   ees.cluster.raft.snapshot.threshold  fewest log entries between
//                                        snapshots, > 0 [10000]; the log
//                                        must also have grown as large as
//                                        the last snapshot
//   ees.cluster.raft.snapshot.store      file | db | kafka-ktable [file]
//   ees.cluster.raft.snapshot.db.url     required when the store is db
//   ees.cluster.raft.snapshot.kafka.bootstrap-servers  host:port,...
//   ees.cluster.raft.snapshot.kafka.topic  both required for kafka-ktable
//   ees.cluster.tls.certificate, ees.cluster.tls.private-key,
//   ees.cluster.tls.ca-file              PEM files; all three or none
#pragma once

#include "protocol/ids.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ees::cluster {

// -- errors and results -------------------------------------------------------

/// One problem with the configuration.
struct config_error {
  /// The offending key, e.g. `ees.cluster.raft.peer-count`; empty when the
  /// problem is not about one key (a YAML syntax error, an unreadable file).
  std::string key;
  /// What is wrong and what is expected, e.g. `must be 3 or 5, got 4`.
  std::string message;
  /// Where the key was set: `file:line`, `command line`, a file name, or
  /// empty for a required key that is set nowhere.
  std::string source;
};

/// Returns `key: message (source)`, leaving out the parts that are empty.
std::string to_string(const config_error& err);

/// Returns one `to_string(err)` per line.
std::string to_string(const std::vector<config_error>& errs);

/// Reports access to the value of a failed result (error tier 1): prints the
/// errors to stderr and aborts.
[[noreturn]] void bad_result_access(const std::vector<config_error>& errs);

/// Either a `T` or the non-empty list of everything that went wrong.
template <class T>
class result {
public:
  result(T value) : data_(std::move(value)) {
    // nop
  }

  /// @pre `!errs.empty()`.
  result(std::vector<config_error> errs) : data_(std::move(errs)) {
    // nop
  }

  bool has_value() const noexcept {
    return data_.index() == 0;
  }

  explicit operator bool() const noexcept {
    return has_value();
  }

  /// @pre `has_value()`; aborts otherwise.
  T& value() & {
    check();
    return std::get<0>(data_);
  }

  /// @pre `has_value()`; aborts otherwise.
  const T& value() const& {
    check();
    return std::get<0>(data_);
  }

  /// @pre `has_value()`; aborts otherwise.
  T&& value() && {
    check();
    return std::move(std::get<0>(data_));
  }

  T& operator*() & {
    return value();
  }

  const T& operator*() const& {
    return value();
  }

  T* operator->() {
    return &value();
  }

  const T* operator->() const {
    return &value();
  }

  /// Returns the errors; empty when `has_value()`.
  const std::vector<config_error>& errors() const noexcept {
    static const std::vector<config_error> none;
    return has_value() ? none : std::get<1>(data_);
  }

private:
  void check() const {
    if (!has_value())
      bad_result_access(std::get<1>(data_));
  }

  std::variant<T, std::vector<config_error>> data_;
};

// -- the settings model -------------------------------------------------------

/// Where a group's snapshots go (`ees.cluster.raft.snapshot.store`).
enum class snapshot_store_kind {
  file, ///< `file`: the local data directory.
  db, ///< `db`: a database, key `cluster:raft/snapshots/{group}`.
  kafka_ktable ///< `kafka-ktable`: a compacted Kafka topic.
};

/// Returns the configuration spelling: `file`, `db` or `kafka-ktable`.
const char* to_string(snapshot_store_kind x);

/// TLS material for peer connections. Invariant after validation: either all
/// three paths name existing files, or all three are empty.
struct tls_settings {
  std::string certificate; ///< `ees.cluster.tls.certificate`
  std::string private_key; ///< `ees.cluster.tls.private-key`
  std::string ca_file; ///< `ees.cluster.tls.ca-file`

  /// Returns whether TLS is configured (all three paths set).
  bool enabled() const noexcept;
};

/// Another node's identity and address (`ees.cluster.peers[N]`).
struct peer_address {
  node_id id;
  std::string host; ///< Without brackets, also for IPv6.
  std::uint16_t port = 0;
};

/// The peers of the Raft group of one application
/// (`ees.cluster.raft.groups[app].peers[]`).
struct group_settings {
  std::string app;
  /// In index order. Invariant after validation: 1..7 unique ids, each this
  /// node's or one of `node_settings::peers`.
  std::vector<node_id> peers;
};

/// Everything a node needs to start, validated.
struct node_settings {
  using snapshot_store_kind = cluster::snapshot_store_kind;

  node_id id; ///< `ees.cluster.node-id`, > 0
  std::string rack = "default"; ///< `ees.cluster.rack`
  std::string zone = "default"; ///< `ees.cluster.zone`
  std::string listen_host = "127.0.0.1"; ///< host of `ees.cluster.listen`
  std::uint16_t listen_port = 0; ///< port of `ees.cluster.listen`
  /// `ees.cluster.peers`, in index order. May list this node too, with the
  /// address it listens on, so that all nodes can share one list.
  std::vector<peer_address> peers;
  std::string data_dir; ///< `ees.cluster.raft.data-dir`
  /// `ees.cluster.raft.groups[app]`, sorted by app name.
  std::vector<group_settings> groups;
  std::uint32_t peer_count = 3; ///< `ees.cluster.raft.peer-count`
  std::uint32_t heartbeat_ms = 100; ///< `ees.cluster.raft.heartbeat-ms`
  std::uint32_t election_ms = 1000; ///< `ees.cluster.raft.election-ms`
  std::uint32_t rpc_timeout_ms = 1000; ///< `ees.cluster.raft.rpc-timeout-ms`
  /// `ees.cluster.scheduler.threads`: CAF worker threads; 0 is half the
  /// cores, at least two (apps/node_common.hpp).
  std::uint32_t scheduler_threads = 0;
  /// `ees.cluster.raft.direct-links`: send Raft batches to peers over a
  /// TCP connection of their own, written by the sending thread
  /// (actors/direct_link.hpp); BASP otherwise, and always with TLS.
  bool direct_links = true;
  /// `ees.cluster.raft.snapshot.threshold`: the fewest applied entries
  /// between snapshots; a group also waits until the log since its last
  /// snapshot is at least as large as that snapshot (bytes).
  std::uint64_t snapshot_threshold = 10000;
  snapshot_store_kind snapshot_store = snapshot_store_kind::file;
  std::string snapshot_db_url; ///< `...snapshot.db.url`
  std::string kafka_bootstrap; ///< `...snapshot.kafka.bootstrap-servers`
  std::string kafka_topic; ///< `...snapshot.kafka.topic`
  tls_settings tls; ///< `ees.cluster.tls.*`
};

bool operator==(const tls_settings& x, const tls_settings& y);
bool operator==(const peer_address& x, const peer_address& y);
bool operator==(const group_settings& x, const group_settings& y);
bool operator==(const node_settings& x, const node_settings& y);

bool operator!=(const tls_settings& x, const tls_settings& y);
bool operator!=(const peer_address& x, const peer_address& y);
bool operator!=(const group_settings& x, const group_settings& y);
bool operator!=(const node_settings& x, const node_settings& y);

// -- loading ------------------------------------------------------------------

/// A value as read, with where it was read.
struct config_entry {
  std::string value;
  std::string source; ///< `file:line` or `command line`
};

/// Dotted keys (`ees.cluster.raft.groups[app].peers[0]`) to raw values,
/// ordered by key.
using flat_config = std::map<std::string, config_entry>;

/// Parses Java-style properties: `key=value` or `key: value` lines, `#` and
/// `!` comment lines, backslash escapes (`\\`, `\t`, `\n`, `\uXXXX`, ...) and
/// line continuations. Leading and trailing whitespace of keys and values is
/// dropped.
/// @param source_name Names the text in sources and errors, e.g. a path.
/// @returns The entries, or one error per malformed line and per key set
///          twice (naming both lines).
result<flat_config> parse_properties(std::string_view text,
                                     const std::string& source_name);

/// Parses YAML: nested maps become dotted keys (`ees: {cluster: {node-id: 1}}`
/// is `ees.cluster.node-id`), sequence items `[i]` indices, and the children
/// of `ees.cluster.raft.groups` `[app]` keys. An empty sequence or map, or a
/// null, is an empty value.
/// @returns The entries, or the syntax error with its line, or one error per
///          key set twice.
result<flat_config> parse_yaml(std::string_view text,
                               const std::string& source_name);

/// Parses command-line overrides `key=value` (a leading `--` is allowed). A
/// key given twice keeps its last value.
result<flat_config> parse_overrides(const std::vector<std::string>& args);

/// Merges `overrides` into `base`; the overrides win. Overriding a key also
/// drops the base's entries below it, so that `ees.cluster.peers=...`
/// replaces a whole list given as `ees.cluster.peers[N]`.
void apply_overrides(flat_config& base, const flat_config& overrides);

/// Reads and parses a configuration file, choosing the format by extension
/// (`.properties`, `.yaml` or `.yml`).
result<flat_config> read_config_file(const std::string& path);

/// Types and range-checks every key and checks the keys against each other.
/// Checks that TLS files exist (so it reads the file system).
/// @returns The settings, or every error found: unknown keys (with a "did you
///          mean" suggestion when one is close), bad values, missing
///          required keys and inconsistencies.
result<node_settings> validate(const flat_config& cfg);

/// Reads `file` (when given), applies `overrides` ("key=value") on top and
/// validates the result. Validation runs only when the file and the
/// overrides parse; the errors of both are reported together.
result<node_settings> load_settings(const std::optional<std::string>& file,
                                    const std::vector<std::string>& overrides);

/// Returns the canonical `.properties` form of `x`: every key, defaults
/// included, in a fixed order. For valid settings,
/// `validate(parse_properties(to_properties(x)))` equals `x`.
std::string to_properties(const node_settings& x);

} // namespace ees::cluster
