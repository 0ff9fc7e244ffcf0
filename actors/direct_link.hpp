// Direct links: the Raft batches one server sends another, and the calls a
// client sends a server and their answers, over a plain TCP connection that
// the sending thread writes itself and one thread per connection reads on
// the receiving side.
//
// Why: through CAF's middleman a one-way hop hands a message from thread to
// thread three times (sender's worker -> its middleman -> the receiver's
// middleman -> the receiver's worker); here twice (the reader thread, then
// the receiver's worker). On this 2-core VM each hand-off costs a wake-up of
// about 30 us plus its wait for a CPU (bench/README.md, "Transport round
// trips", "Where a write's time goes").
//
// What stays on BASP: the connection itself (the transport and the client
// dial it first and treat its loss as the server's loss), every message that
// is not a batch of envelopes or of client calls (hello, status, subscribe,
// pushed notifications), and everything with TLS on (a direct link is
// plaintext, so it is never used then).
//
// Wire format: a connection starts with the dialer's hello: magic "EESD"
// (a peer server), version, node id; or magic "EESC" (a client), version,
// a tag for logs. Then frames of a little-endian u32 payload length and a
// payload, the caf::binary_serializer encoding of std::vector<envelope>
// (peer to peer), std::vector<client_call> (client to server) or
// std::vector<client_answer> (server to client, on the same connection).
// Raft tolerates lost, duplicated and reordered messages (§5.3, §5.5), so a
// link that breaks is dropped, and the transport falls back to BASP until
// it has dialed a new one (actors/transport.hpp). A client retries the calls
// whose answers the broken link lost, as after any lost connection (their
// commands carry request ids, so a retry never applies twice).
#pragma once

#include "actors/envelope.hpp"
#include "actors/interfaces.hpp"
#include "protocol/ids.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ees::actors::direct {

/// "EESD", the first four bytes a peer server sends.
inline constexpr std::uint32_t hello_magic = 0x44534545;
/// "EESC", the first four bytes a client sends.
inline constexpr std::uint32_t client_magic = 0x43534545;
inline constexpr std::uint16_t wire_version = 1;
/// Size of the hello: magic (4), version (2), node id or client tag (8).
inline constexpr std::size_t hello_size = 14;
/// Largest payload a reader accepts: a bigger length prefix closes the
/// connection (a corrupt or hostile stream must not make it allocate
/// gigabytes). A sender hands bigger batches (snapshots) to BASP.
inline constexpr std::uint32_t max_payload = 64u << 20;
/// Bytes a link may hold back when the peer reads too slowly (stopped,
/// partitioned): beyond them it breaks, and the transport falls back to
/// BASP, which queues without bound as before. A link with a fallback
/// hands it every frame bigger than this (a snapshot for a follower).
inline constexpr std::size_t max_backlog = 8u << 20;
/// How often a link with a backlog tries to send it when nothing else is
/// sent, and how long it may make no progress before it breaks.
inline constexpr std::chrono::milliseconds drain_interval{1};
inline constexpr std::chrono::seconds drain_stall_limit{5};
/// How long a listener waits after an accept failed for want of
/// descriptors or memory.
inline constexpr std::chrono::milliseconds accept_retry{100};
/// Reads of a frame's payload grow its buffer by at most this much.
inline constexpr std::size_t read_chunk = 1u << 20;
/// Connections a listener serves at once, one thread each (one per peer, a
/// few more while peers reconnect, one per client process); more are closed
/// at once, and their dialers use BASP.
inline constexpr std::size_t max_connections = 256;
/// How long a new connection may take to send its hello.
inline constexpr std::chrono::seconds hello_timeout{5};

/// The frame of `batch`: length prefix and payload; empty if the batch
/// cannot be serialized or exceeds `max_payload`. `Batch` is one of
/// std::vector<envelope>, std::vector<client_call> and
/// std::vector<client_answer>.
template <class Batch>
std::vector<char> encode_frame(const Batch& batch);

/// The batch of one frame's payload; an error if it is malformed (bad
/// encoding, trailing bytes).
template <class Batch = std::vector<envelope>>
caf::expected<Batch> decode_payload(const char* data, std::size_t size);

/// The hello a peer server sends first.
std::vector<char> encode_hello(node_id self);

/// The hello a client sends first; `tag` only names it in logs.
std::vector<char> encode_client_hello(std::uint64_t tag);

/// Who said hello: a peer server or a client.
struct hello {
  bool client = false;
  /// The peer's node id, or the client's tag.
  std::uint64_t id = 0;
};

/// Who said hello; nullopt if the magic or version is wrong.
std::optional<hello> decode_hello(const char* data);

/// The receiving side: listens on `host`, port chosen by the kernel, and
/// delivers every batch it reads to `server` (an anonymous send, so the
/// server adopts nothing from it). A client's calls reach the server as
/// (atom::client, atom::calls, calls, sink), where the sink writes the
/// server's answers back to that connection. Bad input (wrong hello,
/// oversize or malformed frame) closes that connection with a warning;
/// nothing more is delivered from it. The destructor closes every socket
/// and joins the threads; destroy it before the actor system.
class listener {
public:
  static caf::expected<std::unique_ptr<listener>>
  start(const std::string& host, node_id self, server_actor server);

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

  listener(int fd, std::uint16_t port, node_id self, server_actor server);
  void accept_loop();
  void read_loop(int fd);
  void read_calls(int fd, std::uint64_t tag);
  /// Joins the readers whose connection ended (called on each accept).
  void reap();

  int fd_;
  std::uint16_t port_;
  node_id self_;
  server_actor server_;
  std::mutex mtx_;
  /// Wakes an accept loop waiting out a failed accept.
  std::condition_variable stopped_;
  bool stopping_ = false;
  std::vector<connection> connections_;
  std::thread acceptor_;
};

/// The sending side: connects to a peer's listener at host:port within
/// `timeout`, sends the hello and returns a handle that behaves as the
/// peer's server for the messages a server sends peers. Sending a batch
/// (std::vector<envelope> or one envelope) writes its frame on the sending
/// thread (never blocking: what the socket does not take is sent by the
/// next send or every `drain_interval`, up to `max_backlog`, and breaks the
/// link after `drain_stall_limit` without progress); any other message goes
/// to `fallback`
/// (the peer's BASP proxy). The handle terminates (monitors get a
/// down_msg) when the connection breaks or it receives an exit message.
caf::expected<caf::actor> dial(caf::actor_system& sys, node_id self,
                               const std::string& host, std::uint16_t port,
                               std::chrono::milliseconds timeout,
                               caf::actor fallback);

/// A client's side of a direct link (ees::cluster::client): connects to a
/// server's listener at host:port within `timeout` and sends the client
/// hello. `handle()` behaves as the server for batched calls: sending it
/// (atom::client, atom::calls, calls, sink) writes the calls' frame on the
/// sending thread (as `dial`'s handle does, the sink is implied: the
/// answers come back on this connection); any other message goes to
/// `fallback` (the server's BASP proxy). A reader thread hands every batch
/// of answers to `sink` as (atom::answers, answers). The handle terminates
/// when the connection breaks (either side) or on an exit message; the
/// destructor terminates it and joins the reader.
class client_link {
public:
  static caf::expected<std::shared_ptr<client_link>>
  dial(caf::actor_system& sys, std::uint64_t tag, const std::string& host,
       std::uint16_t port, std::chrono::milliseconds timeout,
       caf::actor fallback, client_sink_actor sink);

  ~client_link();
  client_link(const client_link&) = delete;
  client_link& operator=(const client_link&) = delete;

  const caf::actor& handle() const {
    return handle_;
  }

private:
  client_link(int fd, caf::actor handle, client_sink_actor sink);

  caf::actor handle_;
  std::thread reader_;
};

} // namespace ees::actors::direct
