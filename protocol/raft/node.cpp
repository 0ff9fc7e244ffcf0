#include "protocol/raft/node.hpp"

#include "protocol/raft/invariant.hpp"

#include <algorithm>
#include <utility>

// Mutants: deliberately broken builds that prove the tests can fail. They are
// compiled only with -DEES_MUTANT=<name> (see CMakeLists.txt).
//   EES_MUTANT_OLD_TERM_COMMIT    counts replicas for entries of older terms
//                                 (breaks §5.4.2, the Figure 8 case);
//   EES_MUTANT_VOTE_BEFORE_PERSIST sends vote grants before the vote is
//                                 durable (breaks §5.2 across crashes);
//   EES_MUTANT_STALE_LOG_VOTE     grants votes without the §5.4.1
//                                 up-to-date check (breaks leader
//                                 completeness);
//   EES_MUTANT_UNDURABLE_LEADER   leads on others' votes before its own term
//                                 and vote are durable (a bug the simulation
//                                 found: after a crash the node led the same
//                                 term twice with different entries);
//   EES_MUTANT_LAZY_COMMIT        writes the commit index only after the
//                                 entries it covers (a bug review found: a
//                                 restart could run a configuration two
//                                 changes old).
//   EES_MUTANT_UNSYNCED_VOTE      lets a new term or vote be written without
//                                 fsync, like a commit index (breaks §5.2
//                                 across crashes: one vote per term).

namespace ees::raft {

namespace {

using ull = unsigned long long;

bool is_vote_request(message_type t) {
  return t == message_type::vote_request || t == message_type::pre_vote_request;
}

bool is_from_leader(message_type t) {
  return t == message_type::append_request
         || t == message_type::heartbeat_request
         || t == message_type::install_snapshot;
}

std::size_t quorum_of(std::size_t voters) {
  return voters / 2 + 1;
}

} // namespace

// -- construction -------------------------------------------------------------

node::node(const raft_config& cfg, persistent_state restored)
  : cfg_(cfg), rng_{cfg.seed ^ (cfg.id.value * 0x9E3779B97F4A7C15ull)},
    current_term_(restored.state.current_term),
    voted_for_(restored.state.voted_for),
    log_(restored.snapshot, std::move(restored.entries)) {
  EES_ASSERT(validate(cfg).empty(), "%s", validate(cfg).c_str());
  auto snap = log_.snapshot_index();
  commit_index_ = std::max(restored.state.commit_index, snap);
  EES_ASSERT(commit_index_ <= log_.last_index(),
             "durable commit %llu beyond durable log %llu",
             static_cast<ull>(commit_index_.value),
             static_cast<ull>(log_.last_index().value));
  // The embedding restores its state machine from the snapshot; entries after
  // it are handed out again through ready::committed.
  applying_ = snap;
  applied_ = snap;
  commit_target_ = commit_index_;
  config_ = restored.snapshot.config;
  config_history_[snap] = config_;
  apply_committed_configs(snap + 1, commit_index_);
  become_follower(current_term_, no_node);
  last_hard_state_ = current_hard_state();
  last_soft_state_ = soft_state{role_, leader_, current_term_};
}

// -- inputs -------------------------------------------------------------------

void node::tick() {
  if (role_ != role::leader) {
    // §5.2: a follower that hears nothing for an election timeout campaigns.
    ++election_elapsed_;
    if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
      election_elapsed_ = 0;
      start_campaign(cfg_.pre_vote, false);
    }
    return;
  }
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (transfer_target_ != no_node && ++transfer_elapsed_ >= cfg_.election_ticks)
    transfer_target_ = no_node; // Thesis §3.10: abort a transfer that stalls.
  if (transfer_target_ == no_node && !config_.is_voter(cfg_.id))
    hand_off_leadership(); // Removed: keep trying until someone takes over.
  if (election_elapsed_ >= cfg_.election_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      // Thesis §6.2: step down unless a majority was heard from recently.
      std::size_t active = 0;
      for (auto& [id, pr] : progress_) {
        if (config_.is_voter(id) && (id == cfg_.id || pr.recent_active))
          ++active;
        pr.recent_active = false;
      }
      if (active < quorum_of(config_.voters.size())) {
        become_follower(current_term_, no_node);
        return;
      }
    }
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat(pending_reads_.empty() ? 0
                                               : pending_reads_.back().round);
  }
}

raft_errc node::step(const message& m) {
  if (m.from == cfg_.id || m.from == no_node)
    return raft_errc::unknown_peer;
  if (m.term > current_term_) {
    if (is_vote_request(m.type)) {
      // Thesis §4.2.3: a server that heard from a leader within the minimum
      // election timeout ignores vote requests, so a removed or partitioned
      // server cannot depose a healthy leader. Leader transfer overrides it.
      if (m.context != forced_campaign && in_lease())
        return raft_errc::ok;
    }
    if (m.type == message_type::pre_vote_request) {
      // A pre-vote never changes the voter's term (thesis §9.6).
    } else if (m.type == message_type::pre_vote_response && !m.reject) {
      // A grant for the term we would campaign in; counted below.
    } else if (is_from_leader(m.type)) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, no_node); // §5.1
    }
  } else if (m.term < current_term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote)
        && (m.type == message_type::append_request
            || m.type == message_type::heartbeat_request)) {
      // A stale leader may be cut off by pre-vote from ever seeing our higher
      // term in a vote request; tell it, so it steps down (§5.1).
      message out;
      out.type = message_type::append_response;
      out.to = m.from;
      send_after_persist(std::move(out));
    } else if (m.type == message_type::pre_vote_request) {
      message out;
      out.type = message_type::pre_vote_response;
      out.to = m.from;
      out.reject = true;
      send_after_persist(std::move(out));
    }
    return raft_errc::stale_message;
  }
  switch (m.type) {
    case message_type::pre_vote_request:
    case message_type::vote_request:
      handle_vote_request(m);
      break;
    case message_type::pre_vote_response:
      if (role_ == role::pre_candidate)
        handle_vote_response(m);
      break;
    case message_type::vote_response:
      if (role_ == role::candidate)
        handle_vote_response(m);
      break;
    case message_type::append_request:
    case message_type::heartbeat_request:
    case message_type::install_snapshot:
      if (role_ == role::leader)
        return raft_errc::stale_message; // Impossible in a correct cluster.
      if (role_ != role::follower)
        become_follower(current_term_, m.from); // §5.2: a leader exists.
      leader_ = m.from;
      election_elapsed_ = 0;
      if (m.type == message_type::append_request)
        handle_append(m);
      else if (m.type == message_type::heartbeat_request)
        handle_heartbeat(m);
      else
        handle_install_snapshot(m);
      break;
    case message_type::append_response:
      if (role_ == role::leader)
        handle_append_response(m);
      break;
    case message_type::heartbeat_response:
      if (role_ == role::leader)
        handle_heartbeat_response(m);
      break;
    case message_type::timeout_now:
      // Thesis §3.10: the leader chose us; campaign at once, without pre-vote.
      if (role_ != role::leader && promotable())
        start_campaign(false, true);
      break;
  }
  return raft_errc::ok;
}

propose_result node::propose(std::string data) {
  if (role_ != role::leader)
    return {raft_errc::not_leader, {}, {}};
  if (transfer_target_ != no_node)
    return {raft_errc::proposal_dropped, {}, {}};
  append_local(entry_type::normal, std::move(data));
  return {raft_errc::ok, log_.last_index(), current_term_};
}

propose_result node::propose_conf_change(const conf_change& cc) {
  if (role_ != role::leader)
    return {raft_errc::not_leader, {}, {}};
  if (transfer_target_ != no_node)
    return {raft_errc::proposal_dropped, {}, {}};
  // One change at a time, and only after this leader committed an entry of
  // its term (pending_conf_index_ starts at its noop): thesis §4.1.
  if (pending_conf_index_ > commit_index_)
    return {raft_errc::conf_change_pending, {}, {}};
  auto next = config_;
  if (!apply_conf_change(next, cc) || next.voters.empty())
    return {raft_errc::invalid_conf_change, {}, {}};
  if (cc.op == conf_change::kind::promote_learner) {
    // Thesis §4.2.1: a new voter must not stall commitment while it catches up.
    auto i = progress_.find(cc.node);
    if (i == progress_.end() || i->second.match < commit_index_)
      return {raft_errc::learner_not_caught_up, {}, {}};
  }
  append_local(entry_type::config, encode_membership(next));
  pending_conf_index_ = log_.last_index();
  return {raft_errc::ok, log_.last_index(), current_term_};
}

raft_errc node::read_index(std::uint64_t context) {
  if (role_ != role::leader)
    return raft_errc::not_leader;
  // Thesis §6.4: until the leader commits an entry of its term, its commit
  // index may lag behind what earlier leaders committed.
  if (log_.term(commit_index_) != current_term_) {
    reads_before_commit_.push_back(context);
    return raft_errc::ok;
  }
  auto round = ++read_round_;
  pending_reads_.push_back(
    pending_read{round, read_state{commit_index_, context}, {cfg_.id}});
  release_reads(round, cfg_.id);
  if (!pending_reads_.empty())
    broadcast_heartbeat(round);
  return raft_errc::ok;
}

raft_errc node::transfer_leadership(node_id target) {
  if (role_ != role::leader)
    return raft_errc::not_leader;
  if (target == cfg_.id)
    return raft_errc::ok;
  if (!config_.is_voter(target))
    return raft_errc::unknown_peer;
  if (transfer_target_ == target)
    return raft_errc::ok;
  transfer_target_ = target;
  transfer_elapsed_ = 0;
  auto& pr = progress_.at(target);
  if (pr.match == log_.last_index()) {
    message out;
    out.type = message_type::timeout_now;
    out.to = target;
    send(std::move(out));
  } else {
    send_append(target, pr, true);
  }
  return raft_errc::ok;
}

raft_errc node::campaign() {
  if (!promotable())
    return raft_errc::invalid_argument;
  if (role_ != role::leader)
    start_campaign(cfg_.pre_vote, false);
  return raft_errc::ok;
}

raft_errc node::compact(log_index index) {
  if (index <= log_.snapshot_index())
    return raft_errc::compacted;
  if (index > applied_)
    return raft_errc::unavailable;
  auto it = std::prev(config_history_.upper_bound(index));
  snapshot_meta meta{index, *log_.term(index), it->second};
  log_.compact(meta);
  // Keep only the membership in force at the snapshot and later changes.
  config_history_.erase(config_history_.begin(), it);
  auto in_force = config_history_.begin()->second;
  config_history_.erase(config_history_.begin());
  config_history_[index] = in_force;
  return raft_errc::ok;
}

void node::report_snapshot(node_id peer, bool success) {
  auto i = progress_.find(peer);
  if (role_ != role::leader || i == progress_.end()
      || i->second.state != progress_state::snapshot)
    return;
  auto& pr = i->second;
  if (!success)
    pr.pending_snapshot = log_index{};
  pr.become_probe();
  // Wait for the follower's answer to the snapshot before probing further.
  pr.probe_sent = success;
}

void node::report_unreachable(node_id peer) {
  if (role_ == role::follower && leader_ == peer && peer != no_node) {
    leader_ = no_node; // Ends the lease: in_lease() needs a leader.
    return;
  }
  auto i = progress_.find(peer);
  if (role_ == role::leader && i != progress_.end()
      && i->second.state == progress_state::replicate)
    i->second.become_probe();
}

// -- outputs ------------------------------------------------------------------

bool node::has_ready() const {
  return (broadcast_pending_ && role_ == role::leader)
         || soft_state{role_, leader_, current_term_} != last_soft_state_
         || current_hard_state() != last_hard_state_ || pending_snapshot_
         || log_.unstable_from() <= log_.last_index() || !msgs_.empty()
         || !msgs_after_persist_.empty() || !read_states_.empty()
         || (commit_index_ > applying_ && applying_ >= log_.snapshot_index());
}

ready node::take_ready() {
  if (broadcast_pending_ && role_ == role::leader)
    broadcast_append();
  broadcast_pending_ = false;
  ready rd;
  soft_state soft{role_, leader_, current_term_};
  if (soft != last_soft_state_) {
    rd.soft = soft;
    last_soft_state_ = soft;
  }
  auto hs = current_hard_state();
  if (hs != last_hard_state_) {
    // A term or vote must be durable before anything relies on it (§5.2);
    // the commit index alone need not (it is volatile, Figure 2).
    rd.sync = hs.current_term != last_hard_state_.current_term
              || hs.voted_for != last_hard_state_.voted_for;
#ifdef EES_MUTANT_UNSYNCED_VOTE
    rd.sync = false;
#endif
    rd.state = hs;
    last_hard_state_ = hs;
  }
  if (pending_snapshot_) {
    // The environment restores the state machine from it before applying
    // anything else.
    applying_ = std::max(applying_, pending_snapshot_->last_index);
    rd.snapshot = std::move(pending_snapshot_);
    pending_snapshot_.reset();
  }
  rd.entries = log_.take_unstable();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.messages_after_persist = std::move(msgs_after_persist_);
  msgs_after_persist_.clear();
  if (commit_index_ > applying_ && applying_ >= log_.snapshot_index()) {
    // commit_index_ <= durable index, so these entries are durable.
    rd.committed = log_.slice(applying_ + 1, commit_index_);
    applying_ = commit_index_;
  }
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  if (!rd.entries.empty()) {
    rd.ack.last_index = rd.entries.back().index;
    rd.ack.last_term = rd.entries.back().term;
  }
  rd.ack.state = rd.state;
  rd.sync = rd.sync || rd.snapshot || !rd.entries.empty();
  if (rd.snapshot)
    rd.ack.snapshot_index = rd.snapshot->last_index;
  return rd;
}

void node::on_persisted(const persist_ack& ack) {
  if (ack.snapshot_index) {
    log_.snapshot_stable(*ack.snapshot_index);
    applied_ = std::max(applied_, *ack.snapshot_index);
  }
  if (ack.last_index.value > 0)
    log_.stable_to(ack.last_index, ack.last_term);
  if (role_ == role::leader) {
    // The leader counts its own log only once it is durable (thesis §10.2.1).
    progress_.at(cfg_.id).maybe_update(log_.durable_index());
    maybe_commit();
  } else {
    advance_follower_commit();
  }
  if (role_ == role::candidate && ack.state
      && ack.state->current_term == current_term_
      && ack.state->voted_for == cfg_.id) {
    // §5.2: the candidate's vote for itself counts once it is durable.
    self_vote_durable_ = true;
    handle_vote_response([&] {
      message self_vote;
      self_vote.type = message_type::vote_response;
      self_vote.from = cfg_.id;
      self_vote.term = current_term_;
      return self_vote;
    }());
  }
}

void node::on_applied(log_index index) {
  applied_ = std::max(applied_, std::min(index, applying_));
}

const progress* node::progress_of(node_id peer) const {
  auto i = progress_.find(peer);
  return i == progress_.end() ? nullptr : &i->second;
}

// -- role transitions ---------------------------------------------------------

void node::reset(term_t term) {
  if (term != current_term_) {
    current_term_ = term;
    voted_for_ = no_node;
  }
  leader_ = no_node;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  votes_.clear();
  self_vote_durable_ = false;
  progress_.clear();
  transfer_target_ = no_node;
  transfer_elapsed_ = 0;
  broadcast_pending_ = false;
  pending_reads_.clear();
  reads_before_commit_.clear();
}

void node::reset_randomized_timeout() {
  // §5.2: randomized timeouts in [T, 2T) make split votes rare.
  randomized_election_timeout_
    = cfg_.election_ticks
      + static_cast<std::uint32_t>(next_random() % cfg_.election_ticks);
}

void node::become_follower(term_t term, node_id leader) {
  reset(term);
  role_ = role::follower;
  leader_ = leader;
}

void node::become_pre_candidate() {
  // Thesis §9.6: neither the term nor the vote changes until a majority
  // says it would vote for us.
  votes_.clear();
  leader_ = no_node;
  role_ = role::pre_candidate;
}

void node::become_candidate() {
  reset(current_term_ + 1);
  voted_for_ = cfg_.id;
  role_ = role::candidate;
}

void node::become_leader() {
  reset(current_term_);
  role_ = role::leader;
  leader_ = cfg_.id;
  track_members();
  auto& self = progress_[cfg_.id];
  self.become_replicate();
  self.maybe_update(log_.durable_index());
  // §5.4.2 / thesis §6.4: commit an entry of the new term at once; no
  // membership change before it commits.
  append_local(entry_type::noop, {});
  pending_conf_index_ = log_.last_index();
}

// -- elections ----------------------------------------------------------------

bool node::promotable() const {
  return config_.is_voter(cfg_.id);
}

bool node::in_lease() const {
  return cfg_.check_quorum && leader_ != no_node
         && election_elapsed_ < cfg_.election_ticks;
}

void node::start_campaign(bool pre_vote, bool forced) {
  message req;
  if (pre_vote) {
    become_pre_candidate();
    req.type = message_type::pre_vote_request;
    req.term = current_term_ + 1;
  } else {
    become_candidate();
    req.type = message_type::vote_request;
    req.term = current_term_;
  }
  req.index = log_.last_index();
  req.log_term = log_.last_term();
  req.context = forced ? forced_campaign : 0;
  for (auto id : config_.voters) {
    if (id == cfg_.id)
      continue;
    auto out = req;
    out.to = id;
    send(std::move(out));
  }
  if (pre_vote) {
    // A pre-vote promises nothing durable, so it counts at once.
    message self_vote;
    self_vote.type = message_type::pre_vote_response;
    self_vote.from = cfg_.id;
    self_vote.term = req.term;
    handle_vote_response(self_vote);
  }
  // A real self-vote is counted in on_persisted, once it is durable.
}

void node::handle_vote_request(const message& m) {
  auto pre = m.type == message_type::pre_vote_request;
  // §5.2: one vote per term, first come first served; a pre-vote for a
  // future term binds nothing.
  auto can_vote = voted_for_ == m.from
                  || (voted_for_ == no_node && leader_ == no_node)
                  || (pre && m.term > current_term_);
  auto up_to_date = log_.is_up_to_date(m.index, m.log_term); // §5.4.1
#ifdef EES_MUTANT_STALE_LOG_VOTE
  up_to_date = true;
#endif
  message out;
  out.type
    = pre ? message_type::pre_vote_response : message_type::vote_response;
  out.to = m.from;
  if (can_vote && up_to_date) {
    out.term = m.term;
    if (!pre) {
      election_elapsed_ = 0;
      voted_for_ = m.from;
    }
  } else {
    out.term = current_term_;
    out.reject = true;
  }
#ifdef EES_MUTANT_VOTE_BEFORE_PERSIST
  send(std::move(out));
#else
  // §5.2 with crashes: the grant may leave only once voted_for is durable,
  // or a restarted voter could vote twice in one term.
  send_after_persist(std::move(out));
#endif
}

void node::handle_vote_response(const message& m) {
  if (!config_.is_voter(m.from))
    return;
  votes_.emplace(m.from, !m.reject);
  std::size_t granted = 0;
  std::size_t rejected = 0;
  for (auto id : config_.voters) {
    auto i = votes_.find(id);
    if (i != votes_.end())
      ++(i->second ? granted : rejected);
  }
  auto quorum = quorum_of(config_.voters.size());
  if (granted >= quorum) {
    if (role_ == role::pre_candidate)
      start_campaign(false, false);
#ifndef EES_MUTANT_UNDURABLE_LEADER
    else if (self_vote_durable_)
#else
    else
#endif
      // Only a leader whose term and vote are durable may act: otherwise a
      // crash could bring it back in an older term, and it could win the same
      // term again and append different entries at the same indexes.
      become_leader();
  } else if (config_.voters.size() - rejected < quorum) {
    become_follower(current_term_, no_node);
  }
}

// -- replication --------------------------------------------------------------

void node::handle_append(const message& m) {
  message out;
  out.type = message_type::append_response;
  out.to = m.from;
  if (m.index < commit_index_) {
    // Everything up to our commit index matches the leader already.
    out.index = commit_index_;
    send_after_persist(std::move(out));
    return;
  }
  if (log_.match_term(m.index, m.log_term)) {
    // §5.3: the logs match at m.index; take the leader's entries.
    auto last_new = m.index + m.entries.size();
    if (auto first = log_.append_or_replace(m.entries))
      EES_ASSERT(*first > commit_target_,
                 "leader %llu overwrites committed entry %llu (target %llu)",
                 static_cast<ull>(m.from.value), static_cast<ull>(first->value),
                 static_cast<ull>(commit_target_.value));
    commit_target_ = std::max(commit_target_, std::min(m.commit, last_new));
    advance_follower_commit();
    out.index = last_new;
    send_after_persist(std::move(out));
    return;
  }
  // Fast back-tracking: suggest the last index whose term is <= the leader's
  // term at m.index, skipping a whole conflicting term per round trip.
  auto hint = log_.find_conflict_by_term(std::min(m.index, log_.last_index()),
                                         m.log_term);
  out.index = m.index;
  out.reject = true;
  out.reject_hint = hint;
  out.log_term = log_.term(hint).value_or(term_t{});
  send_after_persist(std::move(out));
}

void node::handle_heartbeat(const message& m) {
  // m.commit <= the leader's idea of our match, which we acknowledged after
  // persisting, so our log matches the leader's up to there.
  commit_target_ = std::max(commit_target_, m.commit);
  advance_follower_commit();
  message out;
  out.type = message_type::heartbeat_response;
  out.to = m.from;
  out.context = m.context;
  send(std::move(out));
}

void node::handle_install_snapshot(const message& m) {
  const auto& snap = m.snapshot;
  message out;
  out.type = message_type::append_response;
  out.to = m.from;
  if (snap.last_index <= std::max(commit_index_, log_.snapshot_index())) {
    // Old news: everything up to there is committed here already, or a newer
    // snapshot is being installed (its ready precedes this answer, so the
    // answer goes out only once it is durable).
    out.index = std::max(commit_index_, log_.snapshot_index());
  } else if (log_.match_term(snap.last_index, snap.last_term)) {
    // §7: our log already contains the snapshot's last entry; keep the log.
    commit_target_ = std::max(commit_target_, snap.last_index);
    advance_follower_commit();
    out.index = snap.last_index;
  } else {
    // §7: discard the entire log and restore from the snapshot. The commit
    // index moves once the snapshot is durable (on_persisted).
    log_.restore(snap);
    config_ = snap.config;
    config_history_.clear();
    config_history_[snap.last_index] = config_;
    commit_target_ = snap.last_index;
    pending_snapshot_ = snap;
    out.index = snap.last_index;
  }
  send_after_persist(std::move(out));
}

void node::handle_append_response(const message& m) {
  auto i = progress_.find(m.from);
  if (i == progress_.end())
    return;
  auto& pr = i->second;
  pr.recent_active = true;
  if (m.reject) {
    auto probe_at = m.reject_hint;
    if (m.log_term.value > 0)
      probe_at = log_.find_conflict_by_term(m.reject_hint, m.log_term);
    if (pr.maybe_decrease_to(m.index, probe_at)) {
      if (pr.state == progress_state::replicate)
        pr.become_probe();
      send_append(m.from, pr, true);
    }
    return;
  }
  auto was_paused = pr.is_paused(cfg_.max_inflight);
  if (!pr.maybe_update(m.index))
    return;
  if (pr.state == progress_state::probe) {
    pr.become_replicate();
  } else if (pr.state == progress_state::snapshot
             && pr.match + 1 >= log_.first_index()) {
    pr.become_replicate();
  }
  if (maybe_commit()) {
    // A committed config entry may have removed this peer or this leader.
    if (role_ != role::leader || progress_.count(m.from) == 0)
      return;
  } else if (was_paused) {
    send_append(m.from, pr, true);
  }
  while (send_append(m.from, pr, false)) {
    // Fill the in-flight window.
  }
  if (m.from == transfer_target_ && pr.match == log_.last_index()) {
    message out;
    out.type = message_type::timeout_now;
    out.to = m.from;
    send(std::move(out));
  }
}

void node::handle_heartbeat_response(const message& m) {
  auto i = progress_.find(m.from);
  if (i == progress_.end())
    return;
  auto& pr = i->second;
  pr.recent_active = true;
  pr.probe_sent = false;
  // The follower is alive; if appends were lost, a full window would never
  // drain. Free a slot so the next append exposes the gap (it gets rejected
  // and the follower is probed).
  if (pr.state == progress_state::replicate
      && pr.inflight.size() >= cfg_.max_inflight)
    pr.inflight.pop_front();
  if (pr.match < log_.last_index())
    send_append(m.from, pr, true);
  if (m.context != 0)
    release_reads(m.context, m.from);
}

bool node::send_append(node_id to, progress& pr, bool send_if_empty) {
  if (pr.is_paused(cfg_.max_inflight))
    return false;
  auto prev = pr.next - 1;
  auto prev_term = log_.term(prev);
  message out;
  out.to = to;
  if (!prev_term) {
    // §7: the entries the follower needs were compacted away.
    out.type = message_type::install_snapshot;
    out.snapshot = log_.snapshot();
    pr.become_snapshot(log_.snapshot_index());
    send(std::move(out));
    return true;
  }
  out.entries
    = log_.slice(pr.next, log_.last_index(), cfg_.max_entries_per_append,
                 cfg_.max_bytes_per_append);
  if (out.entries.empty() && !send_if_empty)
    return false;
  out.type = message_type::append_request;
  out.index = prev;
  out.log_term = *prev_term;
  out.commit = commit_index_;
  pr.sent_entries(out.entries.empty() ? prev : out.entries.back().index);
  send(std::move(out));
  return true;
}

void node::broadcast_append() {
  for (auto& [id, pr] : progress_) {
    if (id == cfg_.id)
      continue;
    if (send_append(id, pr, true))
      while (send_append(id, pr, false)) {
        // Fill the in-flight window.
      }
  }
}

void node::broadcast_heartbeat(std::uint64_t context) {
  for (auto& [id, pr] : progress_) {
    if (id == cfg_.id)
      continue;
    message out;
    out.type = message_type::heartbeat_request;
    out.to = id;
    // Never tell a follower to commit beyond what it is known to hold.
    out.commit = std::min(pr.match, commit_index_);
    out.context = context;
    send(std::move(out));
  }
}

bool node::maybe_commit() {
  std::vector<log_index> matches;
  for (auto id : config_.voters) {
    auto i = progress_.find(id);
    matches.push_back(i == progress_.end() ? log_index{} : i->second.match);
  }
  if (matches.empty())
    return false;
  std::sort(matches.begin(), matches.end(), std::greater<>{});
  // Bounded by our own durable log as well: committed entries are handed out
  // for applying, and must survive a crash of this node (thesis §10.2.1).
  auto candidate
    = std::min(matches[quorum_of(matches.size()) - 1], log_.durable_index());
  if (candidate <= commit_index_)
    return false;
#ifndef EES_MUTANT_OLD_TERM_COMMIT
  // §5.4.2: only entries of the leader's current term commit by counting
  // replicas; older entries commit indirectly (Figure 8).
  if (log_.term(candidate) != current_term_)
    return false;
#endif
  auto old = commit_index_;
  commit_index_ = candidate;
  // Followers hear of it at once, or with the next append or heartbeat
  // (raft_config::broadcast_commit); a committed config entry is broadcast
  // either way (set_config).
  if (cfg_.broadcast_commit)
    broadcast_pending_ = true;
  apply_committed_configs(old + 1, commit_index_);
  if (role_ == role::leader)
    start_pending_reads();
  return true;
}

void node::advance_follower_commit() {
  // The commit index never passes the durable log: we apply only what would
  // survive a crash, and a restart never finds commit beyond its log.
  auto next = std::min(commit_target_, log_.durable_index());
  if (next <= commit_index_)
    return;
  auto old = commit_index_;
  commit_index_ = next;
  apply_committed_configs(old + 1, commit_index_);
}

void node::append_local(entry_type type, std::string data) {
  log_.append(
    log_entry{current_term_, log_.last_index() + 1, type, std::move(data)});
  broadcast_pending_ = true;
}

// -- membership ---------------------------------------------------------------

void node::apply_committed_configs(log_index from, log_index to) {
  for (auto i = std::max(from, log_.first_index()); i <= to; ++i) {
    const auto& e = log_.at(i);
    if (e.type != entry_type::config)
      continue;
    auto m = decode_membership(e.data);
    EES_ASSERT(m.has_value(), "malformed config entry at %llu",
               static_cast<ull>(i.value));
    config_history_[i] = *m;
    set_config(*m);
  }
}

void node::set_config(const membership& m) {
  config_ = m;
  if (role_ != role::leader)
    return;
  track_members();
  broadcast_pending_ = true;
  if (!m.is_voter(cfg_.id))
    hand_off_leadership();
}

void node::track_members() {
  // The leader itself stays tracked even when removed: it still counts its
  // durable log while handing off.
  for (auto i = progress_.begin(); i != progress_.end();) {
    if (!config_.contains(i->first) && i->first != cfg_.id)
      i = progress_.erase(i);
    else
      ++i;
  }
  auto add = [&](node_id id) {
    if (progress_.count(id) > 0)
      return;
    auto& pr = progress_[id];
    pr.next = log_.last_index() + 1;
    pr.recent_active = true; // Give new members a full check-quorum round.
  };
  for (auto id : config_.voters)
    add(id);
  for (auto id : config_.learners)
    add(id);
  for (auto& [id, pr] : progress_)
    pr.is_learner = config_.learners.count(id) > 0;
}

void node::hand_off_leadership() {
  // Thesis §4.2.2: a leader removed from the configuration must not simply
  // stop: with the new configuration active only once committed, the
  // remaining voters may not know the commit yet and still need our vote. So
  // the removed leader stops taking proposals, brings the most up-to-date
  // remaining voter level with its log and hands leadership to it.
  auto target = no_node;
  for (auto id : config_.voters) {
    auto i = progress_.find(id);
    if (i != progress_.end()
        && (target == no_node || i->second.match > progress_.at(target).match))
      target = id;
  }
  if (target != no_node)
    transfer_leadership(target);
}

// -- reads --------------------------------------------------------------------

void node::release_reads(std::uint64_t round, node_id from) {
  if (!config_.is_voter(from))
    return;
  for (auto& r : pending_reads_)
    if (r.round <= round)
      r.acks.insert(from);
  // A quorum for a later read confirms leadership for every earlier one too.
  auto quorum = quorum_of(config_.voters.size());
  auto last_confirmed = pending_reads_.end();
  for (auto i = pending_reads_.begin(); i != pending_reads_.end(); ++i) {
    std::size_t acks = 0;
    for (auto id : i->acks)
      acks += config_.is_voter(id) ? 1 : 0;
    if (acks >= quorum)
      last_confirmed = i;
  }
  if (last_confirmed == pending_reads_.end())
    return;
  for (auto i = pending_reads_.begin(); i != std::next(last_confirmed); ++i)
    read_states_.push_back(i->state);
  pending_reads_.erase(pending_reads_.begin(), std::next(last_confirmed));
}

void node::start_pending_reads() {
  if (reads_before_commit_.empty() || log_.term(commit_index_) != current_term_)
    return;
  auto waiting = std::move(reads_before_commit_);
  reads_before_commit_.clear();
  for (auto context : waiting)
    read_index(context);
}

// -- helpers ------------------------------------------------------------------

message node::stamped(message m) const {
  m.from = cfg_.id;
  if (m.term.value == 0)
    m.term = current_term_;
  return m;
}

void node::send(message m) {
  msgs_.push_back(stamped(std::move(m)));
}

void node::send_after_persist(message m) {
  msgs_after_persist_.push_back(stamped(std::move(m)));
}

hard_state node::current_hard_state() const {
  // The commit index written with a batch is the one its entries will have
  // once durable: everything up to commit_target_ is committed and matches
  // the leader, and every entry up to last_index() is in this batch or an
  // earlier one. Writing only the in-memory commit (bounded by what is
  // durable *before* this batch) would let a crash keep a config entry k+1
  // without the commit of entry k, and a restart would run a membership two
  // changes old, whose quorums need not overlap the newest one's (thesis
  // §4.1). The in-memory commit_index_ still waits for durability.
#ifndef EES_MUTANT_LAZY_COMMIT
  auto persisted_commit
    = std::max(commit_index_, std::min(commit_target_, log_.last_index()));
#else
  auto persisted_commit = commit_index_;
#endif
  return hard_state{current_term_, voted_for_, persisted_commit};
}

std::uint64_t node::next_random() {
  return rng_.next();
}

} // namespace ees::raft
