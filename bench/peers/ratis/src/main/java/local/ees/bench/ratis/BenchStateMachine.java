package local.ees.bench.ratis;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.statemachine.TransactionContext;
import org.apache.ratis.statemachine.impl.BaseStateMachine;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;

/**
 * The benchmark state machine: a key-value map and FIFO locks.
 *
 * <p>Commands (PUT, ACQUIRE, RELEASE) arrive through the Raft log and are
 * applied in log order by Ratis's single applier thread. GET is a read-only
 * query; with {@code raft.server.read.option=LINEARIZABLE} Ratis runs it after
 * a ReadIndex round (leader confirms leadership, waits until applied).
 *
 * <p>Locks: ACQUIRE grants at once when the lock is free; otherwise the
 * acquirer is queued FIFO and the future returned for its log entry stays
 * incomplete. RELEASE by the owner hands the lock to the head of the queue and
 * completes that waiter's future, so Ratis delivers the waiter's reply at the
 * moment of the grant (no polling). Every replica runs the same logic, so the
 * owner and queue are replicated state. There are no leases: a client that
 * dies holding the lock keeps it (the benchmark clients always release).
 *
 * <p>No snapshots (Ratis's auto-trigger is off by default): a restarted peer
 * rebuilds its state by replaying its durable log.
 */
final class BenchStateMachine extends BaseStateMachine {
  private final Map<String, byte[]> kv = new ConcurrentHashMap<>();
  /** Touched only by the applier thread. */
  private final Map<String, LockState> locks = new HashMap<>();

  private static final class Waiter {
    final String owner;
    final CompletableFuture<Message> grant;

    Waiter(String owner, CompletableFuture<Message> grant) {
      this.owner = owner;
      this.grant = grant;
    }
  }

  private static final class LockState {
    String owner; // null when free
    final ArrayDeque<Waiter> queue = new ArrayDeque<>();
  }

  @Override
  public CompletableFuture<Message> applyTransaction(TransactionContext trx) {
    final LogEntryProto entry = trx.getLogEntry();
    final ByteString data = entry.getStateMachineLogEntry().getLogData();
    final Ops.Cmd cmd = Ops.decode(data);
    final CompletableFuture<Message> reply;
    switch (cmd.op) {
      case Ops.PUT:
        kv.put(cmd.first, cmd.second);
        reply = CompletableFuture.completedFuture(Ops.OK);
        break;
      case Ops.ACQUIRE:
        reply = acquire(cmd.first, new String(cmd.second, StandardCharsets.UTF_8));
        break;
      case Ops.RELEASE:
        reply = CompletableFuture.completedFuture(
            release(cmd.first, new String(cmd.second, StandardCharsets.UTF_8)));
        break;
      default:
        reply = CompletableFuture.failedFuture(
            new IllegalArgumentException("unknown opcode " + cmd.op));
    }
    updateLastAppliedTermIndex(entry.getTerm(), entry.getIndex());
    return reply;
  }

  private CompletableFuture<Message> acquire(String name, String owner) {
    LockState l = locks.computeIfAbsent(name, k -> new LockState());
    if (l.owner == null || l.owner.equals(owner)) {
      l.owner = owner;
      return CompletableFuture.completedFuture(Ops.GRANTED);
    }
    CompletableFuture<Message> grant = new CompletableFuture<>();
    l.queue.addLast(new Waiter(owner, grant));
    return grant;
  }

  private Message release(String name, String owner) {
    LockState l = locks.get(name);
    if (l == null || !owner.equals(l.owner)) {
      return Ops.NOT_OWNER;
    }
    Waiter next = l.queue.pollFirst();
    if (next == null) {
      l.owner = null;
    } else {
      l.owner = next.owner;
      next.grant.complete(Ops.GRANTED);
    }
    return Ops.RELEASED;
  }

  @Override
  public CompletableFuture<Message> query(Message request) {
    ByteString c = request.getContent();
    if (c.isEmpty() || c.byteAt(0) != Ops.GET) {
      return CompletableFuture.failedFuture(new IllegalArgumentException("only GET is a query"));
    }
    String key = c.substring(1).toStringUtf8();
    byte[] v = kv.get(key);
    return CompletableFuture.completedFuture(
        Message.valueOf(v == null ? ByteString.EMPTY : ByteString.copyFrom(v)));
  }
}
