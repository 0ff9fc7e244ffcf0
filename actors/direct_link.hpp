// Direct peer links: the Raft batches one server sends another, over a plain
// TCP connection that the sending thread writes itself and one thread per
// connection reads on the receiving node.
//
// Why: through CAF's middleman a one-way hop hands a message from thread to
// thread three times (sender's worker -> its middleman -> the receiver's
// middleman -> the receiver's worker); here twice (the reader thread, then
// the receiver's worker). On this 2-core VM each hand-off costs a wake-up of
// about 30 us plus its wait for a CPU (bench/README.md, "Transport round
// trips", "Where a write's time goes").
//
// What stays on BASP: the connection itself (the transport dials it first
// and treats its loss as the peer's loss), every message that is not a batch
// of envelopes (hello, client calls), and every node with TLS on (a direct
// link is plaintext, so it is never used then).
//
// Wire format: a connection starts with the dialer's hello (magic "EESD",
// version, node id); then frames of a little-endian u32 payload length and
// a payload, the caf::binary_serializer encoding of std::vector<envelope>.
// Raft tolerates lost, duplicated and reordered messages (§5.3, §5.5), so a
// link that breaks is dropped, and the transport falls back to BASP until
// it has dialed a new one (actors/transport.hpp).
#pragma once

#include "actors/envelope.hpp"
#include "actors/interfaces.hpp"
#include "protocol/ids.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ees::actors::direct {

/// "EESD", the first four bytes a dialer sends.
inline constexpr std::uint32_t hello_magic = 0x44534545;
inline constexpr std::uint16_t wire_version = 1;
/// Size of the hello: magic (4), version (2), node id (8).
inline constexpr std::size_t hello_size = 14;
/// Largest payload a reader accepts: a bigger length prefix closes the
/// connection (a corrupt or hostile stream must not make it allocate
/// gigabytes). A sender hands bigger batches (snapshots) to BASP.
inline constexpr std::uint32_t max_payload = 64u << 20;
/// Bytes a link may hold back when the peer reads too slowly (stopped,
/// partitioned): beyond them it breaks, and the transport falls back to
/// BASP, which queues without bound as before.
inline constexpr std::size_t max_backlog = 8u << 20;
/// Connections a listener serves at once (a cluster needs one per peer and
/// a few more while peers reconnect); more are closed at once.
inline constexpr std::size_t max_connections = 64;
/// How long a new connection may take to send its hello.
inline constexpr std::chrono::seconds hello_timeout{5};

/// The frame of `batch`: length prefix and payload; empty if the batch
/// cannot be serialized or exceeds `max_payload`.
std::vector<char> encode_frame(const std::vector<envelope>& batch);

/// The batch of one frame's payload; an error if it is malformed (bad
/// encoding, trailing bytes).
caf::expected<std::vector<envelope>> decode_payload(const char* data,
                                                    std::size_t size);

/// The hello a dialer sends first.
std::vector<char> encode_hello(node_id self);

/// The node id of a hello; nullopt if the magic or version is wrong.
std::optional<node_id> decode_hello(const char* data);

/// The receiving side: listens on `host`, port chosen by the kernel, and
/// delivers every batch it reads to `server` (an anonymous send, so the
/// server adopts nothing from it). Bad input (wrong hello, oversize or
/// malformed frame) closes that connection with a warning; nothing is
/// delivered from it. The destructor closes every socket and joins the
/// threads; destroy it before the actor system.
class listener {
public:
  static caf::expected<std::unique_ptr<listener>>
  start(const std::string& host, node_id self, peer_actor server);

  ~listener();
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  std::uint16_t port() const {
    return port_;
  }

private:
  struct connection {
    int fd = -1;
    std::thread reader;
    std::shared_ptr<std::atomic<bool>> done;
  };

  listener(int fd, std::uint16_t port, node_id self, peer_actor server);
  void accept_loop();
  void read_loop(int fd);
  /// Joins the readers whose connection ended (called on each accept).
  void reap();

  int fd_;
  std::uint16_t port_;
  node_id self_;
  peer_actor server_;
  std::mutex mtx_;
  bool stopping_ = false;
  std::vector<connection> connections_;
  std::thread acceptor_;
};

/// The sending side: connects to a peer's listener at host:port within
/// `timeout`, sends the hello and returns a handle that behaves as the
/// peer's server for the messages a server sends peers. Sending a batch
/// (std::vector<envelope> or one envelope) writes its frame on the sending
/// thread (never blocking: what the socket does not take waits for the
/// next send, up to `max_backlog`); any other message goes to `fallback`
/// (the peer's BASP proxy). The handle terminates (monitors get a
/// down_msg) when the connection breaks or it receives an exit message.
caf::expected<caf::actor> dial(caf::actor_system& sys, node_id self,
                               const std::string& host, std::uint16_t port,
                               std::chrono::milliseconds timeout,
                               caf::actor fallback);

} // namespace ees::actors::direct
