package local.ees.bench.ratis;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.protocol.RaftPeerId;

/** The one Raft group of the benchmark: fixed group id, peers n1..nN. */
final class Group {
  static final RaftGroupId ID =
      RaftGroupId.valueOf(UUID.fromString("5eb1c7a0-2f5e-4d0b-9c1e-ee5c1a5e0001"));

  private Group() {}

  static RaftPeerId peerId(int oneBasedIndex) {
    return RaftPeerId.valueOf("n" + oneBasedIndex);
  }

  /** Peers from "host:port,host:port,..." in order; peer i is "n(i+1)". */
  static List<RaftPeer> peers(String csv) {
    List<RaftPeer> out = new ArrayList<>();
    String[] eps = csv.split(",");
    for (int i = 0; i < eps.length; i++) {
      out.add(RaftPeer.newBuilder().setId(peerId(i + 1)).setAddress(eps[i].trim()).build());
    }
    return out;
  }

  static RaftGroup group(String csv) {
    return RaftGroup.valueOf(ID, peers(csv));
  }
}
