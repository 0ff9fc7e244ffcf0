#include "actors/storage.hpp"

#include "actors/errors.hpp"
#include "actors/one_shot.hpp"
#include "actors/stage_trace.hpp"

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <utility>

namespace ees::actors {

namespace {

/// `<group_dir>/<index>-<term>.snap`, named like storage/snapshot_file.cpp.
std::string snapshot_path(const storage::snapshot_files& files, group_id group,
                          log_index index, term_t term) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "/%020llu-%020llu.snap",
                static_cast<unsigned long long>(index.value),
                static_cast<unsigned long long>(term.value));
  return files.group_dir(group) + buf;
}

/// Reads and decodes one snapshot file.
storage::result<storage::snapshot> read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return storage::storage_error{storage::storage_errc::io_error,
                                  "cannot open " + path};
  std::string bytes{std::istreambuf_iterator<char>{in},
                    std::istreambuf_iterator<char>{}};
  if (in.bad())
    return storage::storage_error{storage::storage_errc::io_error,
                                  "cannot read " + path};
  return storage::decode_snapshot_file(bytes);
}

caf::error snapshots_off() {
  return storage::make_error(storage::storage_error{
    storage::storage_errc::invalid_argument, "snapshots are off"});
}

snapshot_writer_actor::behavior_type
snapshot_writer(snapshot_writer_actor::pointer, storage::snapshot_files files) {
  return {
    [files](atom::snap_save, group_id group, const raft::snapshot_meta& meta,
            const std::string& data) mutable -> caf::result<caf::ok_atom> {
      // Not fail-stop: a failed save deletes its temporary file and nothing
      // depends on it yet (the log is compacted only after it succeeded).
      auto res = files.save(group, meta, data);
      if (res)
        return caf::ok_atom::value;
      spdlog::warn("g={} snapshot save at {} failed: {}", group.value,
                   meta.last_index.value, storage::to_string(res.error()));
      return storage::make_error(res.error());
    },
  };
}

} // namespace

caf::result<snapshot_start>
storage_state::find_snapshot(group_id group, const raft::snapshot_meta& meta,
                             log_index commit) {
  snapshot_start out;
  if (!snapshots) {
    if (meta.last_index.value > 0)
      return snapshots_off();
    return out;
  }
  out.enabled = true;
  out.threshold = snapshot_cfg.threshold;
  auto names = snapshots->list(group);
  if (!names)
    return storage::make_error(names.error());
  // Snapshots cover committed entries only, and committed entries are the
  // same on every replica (§5.4): any file between the log's snapshot and
  // its durable commit index describes this log's state.
  auto hi = std::max(meta.last_index, commit);
  for (auto& [index, term] : *names) {
    if (index > hi || index < meta.last_index)
      continue;
    if (index == meta.last_index && term != meta.last_term)
      continue;
    auto path = snapshot_path(*snapshots, group, index, term);
    auto snap = read_file(path);
    if (!snap || snap->meta.last_index != index
        || snap->meta.last_term != term) {
      spdlog::warn("g={} skipping snapshot file {}: {}", group.value, path,
                   snap ? "meta mismatch" : storage::to_string(snap.error()));
      continue;
    }
    out.found = true;
    out.meta = std::move(snap->meta);
    out.data = std::move(snap->data);
    return out;
  }
  if (meta.last_index.value > 0)
    return storage::make_error(
      storage::storage_error{storage::storage_errc::corruption,
                             "no snapshot file for the log's snapshot at index "
                               + std::to_string(meta.last_index.value)});
  return out;
}

caf::result<std::string>
storage_state::read_snapshot(group_id group, const raft::snapshot_meta& meta) {
  if (!snapshots)
    return snapshots_off();
  auto snap = read_file(
    snapshot_path(*snapshots, group, meta.last_index, meta.last_term));
  if (!snap)
    return storage::make_error(snap.error());
  if (snap->meta != meta)
    return storage::make_error(storage::storage_error{
      storage::storage_errc::invalid_argument, "snapshot meta mismatch"});
  return std::move(snap->data);
}

bool storage_state::flush() {
  flush_pending.fired();
  if (queued.empty())
    return !store->failure();
  auto batch = std::move(queued);
  auto promises = std::move(waiting);
  auto msgs = std::move(outbound);
  queued.clear();
  waiting.clear();
  outbound.clear();
#ifdef EES_MUTANT_SEND_BEFORE_SYNC
  send_outbound(std::move(msgs)); // Mutant: acknowledges what may be lost.
#endif
  for (const auto& w : batch)
    if (!w.entries.empty())
      stage_trace::stamp("write_begin", w.entries.back().index);
  if (auto st = store->write(batch); !st) {
    waiting = std::move(promises);
    fail(st.error());
    return false;
  }
  for (const auto& w : batch)
    if (!w.entries.empty())
      stage_trace::stamp("write_end", w.entries.back().index);
#ifndef EES_MUTANT_SEND_BEFORE_SYNC
  send_outbound(std::move(msgs));
#endif
  for (auto& rp : promises)
    rp.deliver(atom::persisted_v);
  return true;
}

void storage_state::send_outbound(std::vector<envelope> msgs) {
  if (msgs.empty() || !router)
    return; // No server yet: nobody could route them either.
  std::map<node_id, std::vector<envelope>> by_node;
  for (auto& env : msgs) {
    stage_trace::message(false, env.msg);
    by_node[env.msg.to].push_back(std::move(env));
  }
  for (auto& [to, batch] : by_node) {
    auto i = links.find(to);
    caf::send_as(router, i != links.end() ? i->second : router,
                 std::move(batch));
  }
}

void storage_state::fail(const storage::storage_error& err) {
  spdlog::error("storage: write failed, stopping (fail-stop): {}",
                storage::to_string(err));
  auto reason = storage::make_error(err);
  for (auto& rp : waiting)
    rp.deliver(reason);
  waiting.clear();
  queued.clear();
  self->quit(reason);
}

caf::result<raft::persistent_state>
storage_state::register_group(group_id group, raft::membership voters) {
  if (!flush())
    return storage::make_error(*store->failure());
  if (auto st = store->register_group(group); !st) {
    fail(st.error());
    return storage::make_error(st.error());
  }
  auto loaded = store->load(group);
  if (!loaded)
    return storage::make_error(loaded.error());
  auto ps = std::move(*loaded);
  bool fresh = ps.state.current_term == term_t{0} && ps.entries.empty()
               && ps.snapshot.last_index == log_index{0}
               && ps.snapshot.config.voters.empty();
  if (fresh && !voters.voters.empty()) {
    // A new group starts from a snapshot at index 0 holding its voters.
    storage::group_write w;
    w.group = group;
    w.snapshot = raft::snapshot_meta{log_index{0}, term_t{0}, voters};
    if (auto st = store->write({w}); !st) {
      fail(st.error());
      return storage::make_error(st.error());
    }
    ps.snapshot = *w.snapshot;
  }
  return ps;
}

snapshot_storage_actor::behavior_type
snapshot_storage(snapshot_storage_actor::stateful_pointer<storage_state> self,
                 std::shared_ptr<storage::log_store> store,
                 snapshot_settings settings) {
  self->state.self = self;
  self->state.store = std::move(store);
  if (!settings.dir.empty())
    self->state.snapshots = std::make_unique<storage::snapshot_files>(
      settings.dir, std::max<std::size_t>(settings.keep, 1));
  self->state.snapshot_cfg = std::move(settings);
  return {
    [self](atom::register_, group_id group,
           raft::membership& voters) -> caf::result<raft::persistent_state> {
      return self->state.register_group(group, std::move(voters));
    },
    [self](atom::load, group_id group) -> caf::result<raft::persistent_state> {
      auto& st = self->state;
      if (!st.flush())
        return storage::make_error(*st.store->failure());
      auto loaded = st.store->load(group);
      if (!loaded)
        return storage::make_error(loaded.error());
      return std::move(*loaded);
    },
    [self](atom::persist, storage::group_write& w,
           std::vector<envelope>& then) -> caf::result<atom::persisted> {
      auto& st = self->state;
      if (auto& failure = st.store->failure())
        return storage::make_error(*failure);
      auto rp = self->make_response_promise<atom::persisted>();
      st.queued.push_back(std::move(w));
      std::move(then.begin(), then.end(), std::back_inserter(st.outbound));
      st.waiting.push_back(rp);
      st.flush_pending.arm(self);
      return rp;
    },
    [self](atom::flush) { self->state.flush(); },
    [self](atom::router, peer_actor& server) {
      self->state.router = std::move(server);
    },
    [self](atom::connect_peer, node_id id, peer_actor& link) {
      auto& links = self->state.links;
      if (link)
        links[id] = std::move(link);
      else
        links.erase(id);
    },
    [self](atom::unregister, group_id group) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (!st.flush())
        return storage::make_error(*st.store->failure());
      if (auto res = st.store->remove_group(group); !res) {
        st.fail(res.error());
        return storage::make_error(res.error());
      }
      if (st.snapshots)
        if (auto res = st.snapshots->remove(group); !res)
          spdlog::warn("g={} cannot delete snapshot files: {}", group.value,
                       storage::to_string(res.error()));
      return caf::ok_atom::value;
    },
    [self](atom::restore, group_id group, const raft::snapshot_meta& meta,
           log_index commit) -> caf::result<snapshot_start> {
      auto& st = self->state;
      if (!st.flush())
        return storage::make_error(*st.store->failure());
      return st.find_snapshot(group, meta, commit);
    },
    [self](atom::snap_save, group_id group, const raft::snapshot_meta& meta,
           std::string& data) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (!st.snapshots)
        return snapshots_off();
      // Delegated to the writer: a snapshot file is megabytes and its fsync
      // must not delay the log writes queued behind it.
      if (!st.writer) {
        st.writer = spawn_maybe_detached(self, st.snapshot_cfg.detached_saves,
                                         snapshot_writer, *st.snapshots);
        // It ends with the storage, whatever the storage's exit reason.
        self->attach_functor([writer = st.writer](const caf::error&) {
          caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
        });
      }
      return self->delegate(st.writer, atom::snap_save_v, group, meta,
                            std::move(data));
    },
    [self](atom::snap_read, group_id group,
           const raft::snapshot_meta& meta) -> caf::result<std::string> {
      return self->state.read_snapshot(group, meta);
    },
    [self](atom::compact, group_id group,
           const raft::snapshot_meta& meta) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (!st.flush())
        return storage::make_error(*st.store->failure());
      if (auto res = st.store->compact(group, meta); !res) {
        st.fail(res.error());
        return storage::make_error(res.error());
      }
      return caf::ok_atom::value;
    },
  };
}

snapshot_storage_actor::behavior_type
storage(snapshot_storage_actor::stateful_pointer<storage_state> self,
        std::shared_ptr<storage::log_store> store) {
  return snapshot_storage(self, std::move(store), snapshot_settings{});
}

} // namespace ees::actors
