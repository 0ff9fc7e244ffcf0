#include "protocol/raft/types.hpp"

#include "protocol/raft/errors.hpp"

#include <charconv>
#include <sstream>

namespace ees::raft {

namespace {

void encode_ids(std::ostringstream& out, const std::set<node_id>& ids) {
  auto first = true;
  for (auto id : ids) {
    if (!first)
      out << ',';
    out << id.value;
    first = false;
  }
}

// Parses a comma-separated list of positive decimal ids; false when malformed.
bool decode_ids(std::string_view text, std::set<node_id>& out) {
  if (text.empty())
    return true;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find(',', pos);
    if (end == std::string_view::npos)
      end = text.size();
    auto item = text.substr(pos, end - pos);
    std::uint64_t value = 0;
    auto last = item.data() + item.size();
    auto [ptr, ec] = std::from_chars(item.data(), last, value);
    if (item.empty() || ec != std::errc{} || ptr != last || value == 0)
      return false;
    out.insert(node_id{value});
    pos = end + 1;
  }
  return true;
}

// Renders opaque bytes on one line: printable ASCII as is, everything else
// (and the backslash) as \xNN.
std::string printable(std::string_view data) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : data) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

} // namespace

// Format, version 1: "m1;v=1,2,3;l=4" (voters, then learners, ascending).
std::string encode_membership(const membership& m) {
  std::ostringstream out;
  out << "m1;v=";
  encode_ids(out, m.voters);
  out << ";l=";
  encode_ids(out, m.learners);
  return out.str();
}

std::optional<membership> decode_membership(std::string_view data) {
  constexpr std::string_view prefix = "m1;v=";
  if (data.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  auto sep = data.find(";l=", prefix.size());
  if (sep == std::string_view::npos)
    return std::nullopt;
  membership m;
  if (!decode_ids(data.substr(prefix.size(), sep - prefix.size()), m.voters)
      || !decode_ids(data.substr(sep + 3), m.learners))
    return std::nullopt;
  for (auto id : m.learners)
    if (m.voters.count(id) > 0)
      return std::nullopt;
  return m;
}

bool apply_conf_change(membership& m, const conf_change& cc) {
  if (cc.node == no_node)
    return false;
  switch (cc.op) {
    case conf_change::kind::add_learner:
      if (m.contains(cc.node))
        return false;
      m.learners.insert(cc.node);
      return true;
    case conf_change::kind::promote_learner:
      if (m.learners.erase(cc.node) == 0)
        return false;
      m.voters.insert(cc.node);
      return true;
    case conf_change::kind::remove_node:
      if (m.voters.erase(cc.node) + m.learners.erase(cc.node) == 0)
        return false;
      return true;
  }
  return false;
}

const char* to_string(message_type t) {
  switch (t) {
    case message_type::pre_vote_request:
      return "pre_vote_request";
    case message_type::pre_vote_response:
      return "pre_vote_response";
    case message_type::vote_request:
      return "vote_request";
    case message_type::vote_response:
      return "vote_response";
    case message_type::append_request:
      return "append_request";
    case message_type::append_response:
      return "append_response";
    case message_type::heartbeat_request:
      return "heartbeat_request";
    case message_type::heartbeat_response:
      return "heartbeat_response";
    case message_type::install_snapshot:
      return "install_snapshot";
    case message_type::timeout_now:
      return "timeout_now";
  }
  return "unknown";
}

const char* to_string(role r) {
  switch (r) {
    case role::follower:
      return "follower";
    case role::pre_candidate:
      return "pre_candidate";
    case role::candidate:
      return "candidate";
    case role::leader:
      return "leader";
  }
  return "unknown";
}

const char* to_string(raft_errc e) {
  switch (e) {
    case raft_errc::ok:
      return "ok";
    case raft_errc::not_leader:
      return "not_leader";
    case raft_errc::proposal_dropped:
      return "proposal_dropped";
    case raft_errc::conf_change_pending:
      return "conf_change_pending";
    case raft_errc::invalid_conf_change:
      return "invalid_conf_change";
    case raft_errc::learner_not_caught_up:
      return "learner_not_caught_up";
    case raft_errc::unknown_peer:
      return "unknown_peer";
    case raft_errc::stale_message:
      return "stale_message";
    case raft_errc::compacted:
      return "compacted";
    case raft_errc::unavailable:
      return "unavailable";
    case raft_errc::invalid_argument:
      return "invalid_argument";
  }
  return "unknown";
}

std::string describe(const message& m) {
  std::ostringstream out;
  out << m.from.value << "->" << m.to.value << ' ' << to_string(m.type)
      << " term=" << m.term.value;
  switch (m.type) {
    case message_type::pre_vote_request:
    case message_type::vote_request:
      out << " last=" << m.log_term.value << '/' << m.index.value;
      if (m.context == forced_campaign)
        out << " forced";
      break;
    case message_type::pre_vote_response:
    case message_type::vote_response:
      out << (m.reject ? " rejected" : " granted");
      break;
    case message_type::append_request:
      out << " prev=" << m.log_term.value << '/' << m.index.value
          << " commit=" << m.commit.value << " entries=[";
      for (std::size_t i = 0; i < m.entries.size(); ++i) {
        const auto& e = m.entries[i];
        out << (i == 0 ? "" : " ") << e.term.value << '/' << e.index.value;
        if (e.type == entry_type::noop)
          out << ":noop";
        else if (e.type == entry_type::config)
          out << ":config";
        else
          out << ':' << printable(e.data);
      }
      out << ']';
      break;
    case message_type::append_response:
      out << " index=" << m.index.value;
      if (m.reject)
        out << " rejected hint=" << m.log_term.value << '/'
            << m.reject_hint.value;
      break;
    case message_type::heartbeat_request:
      out << " commit=" << m.commit.value;
      [[fallthrough]];
    case message_type::heartbeat_response:
      if (m.context != 0)
        out << " read=" << m.context;
      break;
    case message_type::install_snapshot:
      out << " snapshot=" << m.snapshot.last_term.value << '/'
          << m.snapshot.last_index.value << ' '
          << encode_membership(m.snapshot.config);
      break;
    case message_type::timeout_now:
      break;
  }
  // Fields the kind does not use are shown only when set, so a rendering
  // never hides a difference.
  auto is_response = m.type == message_type::append_response
                     || m.type == message_type::vote_response
                     || m.type == message_type::pre_vote_response;
  if (m.reject && !is_response)
    out << " reject";
  return out.str();
}

} // namespace ees::raft
