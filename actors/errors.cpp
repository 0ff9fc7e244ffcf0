#include "actors/errors.hpp"

#include <caf/make_message.hpp>

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
  }
  return "unknown";
}

caf::error make_error(cluster_errc x) {
  return caf::error{static_cast<std::uint8_t>(x), caf::atom("cluster")};
}

std::string error_name(const caf::error& err) {
  if (err.category() == caf::atom("cluster"))
    return to_string(static_cast<cluster_errc>(err.code()));
  if (err.category() == caf::atom("raft"))
    return raft::to_string(static_cast<raft::raft_errc>(err.code()));
  if (err.category() == caf::atom("storage"))
    return std::string{"storage_failure: "}
           + storage::to_string(static_cast<storage::storage_errc>(err.code()));
  return caf::to_string(err);
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
