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
  }
  return "unknown";
}

caf::error make_error(cluster_errc x) {
  return caf::error{static_cast<std::uint8_t>(x), caf::atom("cluster")};
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
