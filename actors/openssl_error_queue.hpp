// Works around CAF 0.17.6's caf_openssl leaving OpenSSL's per-thread error
// queue dirty (docs/tls.md): every TLS connection of a process is handled by
// the one multiplexer thread, CAF never clears that thread's queue before an
// SSL call (and drains it only in log statements that Debian's
// CAF_LOG_LEVEL_QUIET build compiles out), so after one connection ends with
// an error (OpenSSL 3: "unexpected eof while reading"), SSL_get_error()
// reports SSL_ERROR_SSL for the next would-block read of every healthy
// connection, and CAF closes it.
//
// Linking `ees_openssl_fix` into an executable defines SSL_read, SSL_write,
// SSL_connect and SSL_accept in it; they clear the calling thread's error
// queue (as SSL_get_error(3) requires) and call libssl's. Symbols of the
// executable take precedence over libssl's for libcaf_openssl's calls.
#pragma once

namespace ees::tls {

/// Returns whether the interposed SSL functions are the ones the dynamic
/// linker resolves (false when `ees_openssl_fix` is not linked into the
/// executable, or was not exported): TLS must then stay off.
bool error_queue_fix_active();

} // namespace ees::tls
