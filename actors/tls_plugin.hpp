// TLS as a plugin (docs/tls.md): caf_openssl, libssl and libcrypto are mapped
// only into processes that use TLS. Linked into ees-node they cost about
// 2 MiB of resident pages in every node, TLS or not. The plugin
// (libees-tls.so, beside the executable) holds the OpenSSL manager's entry
// points and the error-queue workaround (openssl_error_queue.hpp); it is
// loaded with RTLD_GLOBAL, so its SSL_* definitions come before libssl's in
// the global scope that libcaf_openssl's calls are resolved in.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>
#include <caf/io/middleman_actor.hpp>

#include <cstdint>
#include <string>

namespace ees::tls {

/// Where the three PEM files are (`ees.cluster.tls.*`).
struct credentials {
  std::string certificate;
  std::string private_key;
  std::string ca_file;
};

/// The plugin's entry points.
struct plugin_api {
  /// Whether the error-queue workaround resolves (TLS must stay off if not).
  bool (*error_queue_fix_active)();
  /// Loads the OpenSSL manager into `cfg` with `creds` (before the actor
  /// system is constructed).
  void (*load)(caf::actor_system_config& cfg, const credentials& creds);
  /// Publishes `whom` over TLS on host:port (0: any port).
  caf::expected<std::uint16_t> (*publish)(const caf::actor& whom,
                                          std::uint16_t port, const char* host,
                                          bool reuse);
  /// The middleman actor that dials peers over TLS.
  caf::io::middleman_actor (*connector)(caf::actor_system& sys);
};

/// The plugin's file name, looked up beside the running executable.
inline constexpr const char* plugin_file = "libees-tls.so";

/// Loads the plugin (once per process) and the OpenSSL manager with `creds`
/// into `cfg` (before the actor system is constructed). On failure (file or
/// symbol missing, no error-queue workaround) prints why to stderr after
/// `program` and returns null: the caller must refuse to run without TLS.
const plugin_api* enable(caf::actor_system_config& cfg,
                         const credentials& creds, const char* program);

} // namespace ees::tls

/// The one symbol the plugin exports for `enable` (C linkage: looked up by
/// name with dlsym).
extern "C" const ees::tls::plugin_api* ees_tls_plugin_api();
