#include "actors/tls_plugin.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

namespace ees::tls {

namespace {

struct loaded {
  const plugin_api* api = nullptr;
  std::string error;
};

loaded load_once() {
  loaded out;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    out.error = "cannot locate the executable: " + ec.message();
    return out;
  }
  auto path = (exe.parent_path() / plugin_file).string();
  // RTLD_GLOBAL: the plugin's SSL_* must precede libssl's (tls_plugin.hpp).
  auto* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    out.error = why != nullptr ? why : ("cannot load " + path);
    return out;
  }
  using entry = const plugin_api* (*)();
  auto* fn = reinterpret_cast<entry>(dlsym(handle, "ees_tls_plugin_api"));
  const plugin_api* api = fn != nullptr ? fn() : nullptr;
  if (api == nullptr) {
    out.error = path + " has no ees_tls_plugin_api";
    return out;
  }
  if (!api->error_queue_fix_active()) {
    out.error = path
                + ": the OpenSSL error-queue workaround does not "
                  "resolve (docs/tls.md)";
    return out;
  }
  out.api = api;
  return out;
}

} // namespace

const plugin_api* enable(caf::actor_system_config& cfg,
                         const credentials& creds, const char* program) {
  static const loaded once = load_once();
  if (once.api == nullptr) {
    std::fprintf(stderr,
                 "%s: cannot load the TLS plugin (docs/tls.md): %s; "
                 "refusing to run without TLS\n",
                 program, once.error.c_str());
    return nullptr;
  }
  once.api->load(cfg, creds);
  return once.api;
}

} // namespace ees::tls
