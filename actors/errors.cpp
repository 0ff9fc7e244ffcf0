#include "actors/errors.hpp"

#include <caf/make_message.hpp>

#include <utility>

namespace ees::actors {

const char* to_string(cluster_errc x) {
  switch (x) {
    case cluster_errc::ok:
      return "ok";
    case cluster_errc::unknown_group:
      return "unknown_group";
    case cluster_errc::already_registered:
      return "already_registered";
    case cluster_errc::replica_restarting:
      return "replica_restarting";
    case cluster_errc::proposal_dropped:
      return "proposal_dropped";
    case cluster_errc::storage_failure:
      return "storage_failure";
    case cluster_errc::invalid_command:
      return "invalid_command";
    case cluster_errc::group_failed:
      return "group_failed";
    case cluster_errc::timed_out:
      return "timed_out";
  }
  return "unknown";
}

caf::error make_error(cluster_errc x) {
  return caf::error{static_cast<std::uint8_t>(x), caf::atom("cluster")};
}

caf::error make_error(cluster_errc x, std::string context) {
  return caf::error{static_cast<std::uint8_t>(x), caf::atom("cluster"),
                    caf::make_message(std::move(context))};
}

namespace {

/// The category prefix of the runtime's own errors, or nullptr.
const char* category_name(const caf::error& err) {
  auto cat = err.category();
  if (cat == caf::atom("cluster"))
    return "cluster";
  if (cat == caf::atom("raft"))
    return "raft";
  if (cat == caf::atom("storage"))
    return "storage";
  return nullptr;
}

} // namespace

std::string error_name(const caf::error& err) {
  auto cat = err.category();
  if (cat == caf::atom("cluster"))
    return to_string(static_cast<cluster_errc>(err.code()));
  if (cat == caf::atom("raft"))
    return raft::to_string(static_cast<raft::raft_errc>(err.code()));
  if (cat == caf::atom("storage"))
    return storage::to_string(static_cast<storage::storage_errc>(err.code()));
  return caf::to_string(err);
}

std::string describe(const caf::error& err) {
  if (!err)
    return "none";
  auto cat = category_name(err);
  if (!cat)
    return caf::to_string(err);
  auto out = std::string{cat} + ":" + error_name(err);
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    out += ": " + ctx.get_as<std::string>(0);
  return out;
}

bool is_storage_failure(const caf::error& err) {
  if (err.category() == caf::atom("storage"))
    return true;
  return err.category() == caf::atom("cluster")
         && err.code()
              == static_cast<std::uint8_t>(cluster_errc::storage_failure);
}

} // namespace ees::actors

namespace ees::raft {

caf::error make_error(raft_errc x) {
  return caf::error{static_cast<std::uint8_t>(x), caf::atom("raft")};
}

} // namespace ees::raft

namespace ees::storage {

caf::error make_error(const storage_error& x) {
  return caf::error{static_cast<std::uint8_t>(x.code), caf::atom("storage"),
                    caf::make_message(x.message)};
}

} // namespace ees::storage
