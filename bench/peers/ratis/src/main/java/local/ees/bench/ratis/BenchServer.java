package local.ees.bench.ratis;

import java.io.File;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.grpc.GrpcConfigKeys;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.RaftServerConfigKeys;
import org.apache.ratis.server.storage.RaftStorage;

/**
 * One Ratis peer: {@code server --id I --peers H1:P1,H2:P2,H3:P3 --data-dir DIR}.
 *
 * <p>Settings are Ratis's defaults except: storage dir, listen address (the
 * peer's own entry of --peers, on its gRPC port, used for peer, client and
 * admin traffic), and {@code raft.server.read.option=LINEARIZABLE}. The
 * defaults give a durable log: segmented RaftLog on disk
 * ({@code raft.server.log.use.memory=false}) whose worker calls
 * FileChannel.force after each batch ({@code raft.server.log.unsafe-flush.enabled=false},
 * {@code raft.server.log.async-flush.enabled=false}); entries count as
 * flushed, and so acknowledged, only after force returns.
 * Runs until killed (SIGTERM closes the server).
 */
final class BenchServer {
  private BenchServer() {}

  static void main(String[] args) throws Exception {
    int id = 0;
    String peersCsv = null;
    String dataDir = null;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--id": id = Integer.parseInt(args[i + 1]); break;
        case "--peers": peersCsv = args[i + 1]; break;
        case "--data-dir": dataDir = args[i + 1]; break;
        default: throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (id <= 0 || peersCsv == null || dataDir == null) {
      throw new IllegalArgumentException("usage: server --id I --peers H:P,H:P,H:P --data-dir DIR");
    }
    RaftGroup group = Group.group(peersCsv);
    RaftPeer self = Group.peers(peersCsv).get(id - 1);
    String[] hostPort = self.getAddress().split(":");

    RaftProperties props = new RaftProperties();
    RaftServerConfigKeys.setStorageDir(props, List.of(new File(dataDir)));
    GrpcConfigKeys.Server.setHost(props, hostPort[0]);
    GrpcConfigKeys.Server.setPort(props, Integer.parseInt(hostPort[1]));
    RaftServerConfigKeys.Read.setOption(props, RaftServerConfigKeys.Read.Option.LINEARIZABLE);

    RaftServer server = RaftServer.newBuilder()
        .setServerId(self.getId())
        .setGroup(group)
        .setProperties(props)
        .setStateMachine(new BenchStateMachine())
        .setOption(RaftStorage.StartupOption.RECOVER) // formats an empty dir
        .build();
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        server.close();
      } catch (Exception e) {
        System.err.println("close: " + e);
      }
      stopped.countDown();
    }));
    server.start();
    System.err.println("ratis peer " + self.getId() + " listening on " + self.getAddress());
    stopped.await();
  }
}
