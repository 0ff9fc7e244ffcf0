// Shared pieces of the actor tests: temporary data directories and the
// configuration of CAF's deterministic scheduler.
#pragma once

#include "actors/type_ids.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

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

} // namespace ees::test
