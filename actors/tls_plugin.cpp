// The TLS plugin (tls_plugin.hpp): built as libees-tls.so, never linked.
#include "actors/tls_plugin.hpp"

#include "actors/openssl_error_queue.hpp"

#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>

namespace {

void load(caf::actor_system_config& cfg, const ees::tls::credentials& creds) {
  cfg.load<caf::openssl::manager>();
  cfg.set("openssl.certificate", creds.certificate);
  cfg.set("openssl.key", creds.private_key);
  cfg.set("openssl.cafile", creds.ca_file);
}

caf::expected<std::uint16_t> publish(const caf::actor& whom, std::uint16_t port,
                                     const char* host, bool reuse) {
  return caf::openssl::publish(whom, port, host, reuse);
}

caf::io::middleman_actor connector(caf::actor_system& sys) {
  return sys.openssl_manager().actor_handle();
}

const ees::tls::plugin_api api{&ees::tls::error_queue_fix_active, &load,
                               &publish, &connector};

} // namespace

extern "C" const ees::tls::plugin_api* ees_tls_plugin_api() {
  return &api;
}
