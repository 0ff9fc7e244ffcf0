package local.ees.bench.ratis;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;

/**
 * Wire format of the state machine's commands (the Raft log payload) and
 * queries. One opcode byte, then:
 *
 * <pre>
 *   PUT     'P' u16 keyLen, key, value          -> "OK"
 *   GET     'G' key                             -> value (empty if absent)   (read-only query)
 *   ACQUIRE 'A' u16 nameLen, name, owner        -> "GRANTED" (reply held back while queued)
 *   RELEASE 'R' u16 nameLen, name, owner        -> "RELEASED" | "NOT_OWNER"
 * </pre>
 */
final class Ops {
  static final byte PUT = 'P';
  static final byte GET = 'G';
  static final byte ACQUIRE = 'A';
  static final byte RELEASE = 'R';

  static final Message OK = Message.valueOf("OK");
  static final Message GRANTED = Message.valueOf("GRANTED");
  static final Message RELEASED = Message.valueOf("RELEASED");
  static final Message NOT_OWNER = Message.valueOf("NOT_OWNER");

  private Ops() {}

  static Message put(String key, byte[] value) {
    return twoPart(PUT, key.getBytes(StandardCharsets.UTF_8), value);
  }

  static Message get(String key) {
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(1 + k.length);
    b.put(GET).put(k);
    return Message.valueOf(ByteString.copyFrom(b.array()));
  }

  static Message acquire(String lock, String owner) {
    return twoPart(ACQUIRE, lock.getBytes(StandardCharsets.UTF_8),
        owner.getBytes(StandardCharsets.UTF_8));
  }

  static Message release(String lock, String owner) {
    return twoPart(RELEASE, lock.getBytes(StandardCharsets.UTF_8),
        owner.getBytes(StandardCharsets.UTF_8));
  }

  private static Message twoPart(byte op, byte[] first, byte[] second) {
    ByteBuffer b = ByteBuffer.allocate(3 + first.length + second.length);
    b.put(op).putShort((short) first.length).put(first).put(second);
    return Message.valueOf(ByteString.copyFrom(b.array()));
  }

  /** A decoded command: opcode, first part (key or lock name), second part. */
  static final class Cmd {
    final byte op;
    final String first;
    final byte[] second;

    Cmd(byte op, String first, byte[] second) {
      this.op = op;
      this.first = first;
      this.second = second;
    }
  }

  /** Decodes PUT, ACQUIRE and RELEASE (two-part commands). */
  static Cmd decode(ByteString data) {
    ByteBuffer b = data.asReadOnlyByteBuffer();
    byte op = b.get();
    int len = Short.toUnsignedInt(b.getShort());
    byte[] first = new byte[len];
    b.get(first);
    byte[] second = new byte[b.remaining()];
    b.get(second);
    return new Cmd(op, new String(first, StandardCharsets.UTF_8), second);
  }
}
