package local.ees.bench.ratis;

import java.util.Arrays;

/**
 * Entry point of ratis-bench.jar:
 *
 * <pre>
 *   java -jar ratis-bench.jar server --id I --peers H1:P1,H2:P2,H3:P3 --data-dir DIR
 *   java -jar ratis-bench.jar loadgen --endpoints H1:P1,H2:P2,H3:P3 --workload W ...
 * </pre>
 *
 * Peer i (1-based position in the list) has Ratis peer id "n&lt;i&gt;", so the
 * loadgen's --endpoints (same order) is enough to address the group.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      System.err.println("usage: ratis-bench.jar server|loadgen [options]");
      System.exit(2);
    }
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    switch (args[0]) {
      case "server":
        BenchServer.main(rest);
        break;
      case "loadgen":
        LoadGen.main(rest);
        break;
      default:
        System.err.println("unknown command " + args[0]);
        System.exit(2);
    }
  }
}
