package local.ees.bench.ratis;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.proto.RaftProtos.RaftPeerRole;
import org.apache.ratis.protocol.GroupInfoReply;
import org.apache.ratis.protocol.RaftClientReply;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.retry.RetryPolicies;

/**
 * Ratis load generator; implements the load-generator contract of
 * bench/README.md:
 *
 * <pre>
 *   loadgen --endpoints E1,E2,E3 --workload put|get|lock|contended|failover-probe|fill|leader
 *           --concurrency N --duration-s S --value-size 256 [--keys K] [--clients N]
 *           [--warmup-s W] [--op-timeout-ms T] [--gap-ms G]
 * </pre>
 *
 * Prints one JSON object line on stdout. Clients are Ratis's RaftClient with
 * its defaults (gRPC, ordered async API, retry forever); one RaftClient
 * carries at most 64 operations in flight (its default limit is 100), so
 * concurrency N uses ceil(N/64) clients. Reads are {@code sendReadOnly},
 * linearizable because the servers run with read.option=LINEARIZABLE.
 */
final class LoadGen {
  private static final int OPS_PER_CLIENT = 64;

  private String endpoints;
  private String workload = "put";
  private int concurrency = 1;
  private double durationS = 5;
  private double warmupS = 0;
  private int valueSize = 256;
  private int keys = 1000;
  private int clients = 0;
  private long opTimeoutMs = 5000;
  private long gapMs = 50;

  private RaftGroup group;
  private byte[] value;

  private LoadGen() {}

  static void main(String[] args) throws Exception {
    // Errors are counted in the result; the Ratis client logs every
    // NotLeader redirect as an error, which is noise here.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
    System.setProperty("org.slf4j.simpleLogger.log.org.apache.ratis.client.impl.OrderedAsync", "off");
    LoadGen g = new LoadGen();
    g.parse(args);
    Map<String, Object> out = g.run();
    System.out.println(Stats.json(out));
    System.out.flush();
    // RaftClient threads may linger after close; the result is out.
    System.exit(0);
  }

  private void parse(String[] args) {
    for (int i = 0; i + 1 < args.length; i += 2) {
      String v = args[i + 1];
      switch (args[i]) {
        case "--endpoints": endpoints = v; break;
        case "--workload": workload = v; break;
        case "--concurrency": concurrency = Integer.parseInt(v); break;
        case "--duration-s": durationS = Double.parseDouble(v); break;
        case "--warmup-s": warmupS = Double.parseDouble(v); break;
        case "--value-size": valueSize = Integer.parseInt(v); break;
        case "--keys": keys = Integer.parseInt(v); break;
        case "--clients": clients = Integer.parseInt(v); break;
        case "--op-timeout-ms": opTimeoutMs = Long.parseLong(v); break;
        case "--gap-ms": gapMs = Long.parseLong(v); break;
        default: throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (endpoints == null) {
      throw new IllegalArgumentException("--endpoints is required");
    }
    if (clients <= 0) {
      clients = concurrency;
    }
    group = Group.group(endpoints);
    value = new byte[valueSize];
    new Random(1).nextBytes(value);
  }

  /**
   * A RaftClient that has completed one read, so connection set-up and the
   * leader redirect happen before any measured window.
   */
  private RaftClient newClient() {
    RaftClient c =
        RaftClient.newBuilder().setProperties(new RaftProperties()).setRaftGroup(group).build();
    try {
      c.async().sendReadOnly(Ops.get("bench/connect")).get(30, TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException e) {
      System.err.println("ratis-loadgen: connect: " + e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return c;
  }

  private List<RaftClient> clientPool(int workers) {
    List<RaftClient> pool = new ArrayList<>();
    for (int i = 0; i < (workers + OPS_PER_CLIENT - 1) / OPS_PER_CLIENT; i++) {
      pool.add(newClient());
    }
    return pool;
  }

  private static void closeAll(List<RaftClient> cs) {
    for (RaftClient c : cs) {
      try {
        c.close();
      } catch (IOException e) {
        // closing at exit; nothing to do
      }
    }
  }

  static String key(int i) {
    return String.format("bench/k%08d", i);
  }

  private Map<String, Object> run() throws Exception {
    switch (workload) {
      case "leader": return leader();
      case "put": return asyncRun(concurrency, (c, w) -> c.async().send(
          Ops.put(key(ThreadLocalRandom.current().nextInt(keys)), value)));
      case "get": // keys of the --keys space, written by earlier puts
        return asyncRun(concurrency, (c, w) -> c.async().sendReadOnly(
            Ops.get(key(ThreadLocalRandom.current().nextInt(keys)))));
      case "lock":
      case "contended": return locks();
      case "failover-probe": return failoverProbe();
      case "fill": {
        double[] c0 = Stats.cpuSeconds();
        long t0 = System.nanoTime();
        Result r = fill(keys, concurrency, durationS);
        long t1 = System.nanoTime();
        double[] c1 = Stats.cpuSeconds();
        return result(r, t0, t1, (t1 - t0) / 1e9, c1[0] - c0[0], c1[1] - c0[1]);
      }
      default: throw new IllegalArgumentException("unknown workload " + workload);
    }
  }

  /** Operations and latencies of one worker (merged after the run). */
  static final class Result {
    final Stats.Latencies lat = new Stats.Latencies();
    final Stats.Latencies aux = new Stats.Latencies();
    long ops;
    long errors;

    void merge(Result o) {
      lat.addAll(o.lat);
      aux.addAll(o.aux);
      ops += o.ops;
      errors += o.errors;
    }
  }

  /** Wall-clock Unix seconds of a System.nanoTime() value. */
  private static double unixSeconds(long nanoTime) {
    return (System.currentTimeMillis() * 1_000_000L + (nanoTime - System.nanoTime())) / 1e9;
  }

  /** The contract's result line; [startNs, endNs] is the measured window. */
  private Map<String, Object> result(Result r, long startNs, long endNs, double dur, double cpuU,
      double cpuS) {
    r.lat.sort();
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("t_start", unixSeconds(startNs));
    m.put("t_end", unixSeconds(endNs));
    m.put("system", "ratis");
    m.put("workload", workload);
    m.put("concurrency", concurrency);
    m.put("ops", r.ops);
    m.put("errors", r.errors);
    m.put("duration_s", dur);
    m.put("throughput", r.ops / dur);
    m.put("p50_ms", r.lat.percentileMs(0.50));
    m.put("p99_ms", r.lat.percentileMs(0.99));
    m.put("p999_ms", r.lat.percentileMs(0.999));
    m.put("cpu_user_s", cpuU);
    m.put("cpu_sys_s", cpuS);
    return m;
  }

  interface AsyncOp {
    CompletableFuture<RaftClientReply> start(RaftClient c, int worker);
  }

  /**
   * Runs `workers` asynchronous op chains (each keeps one op in flight) for
   * warm-up + duration; counts ops that complete inside the window.
   */
  private Map<String, Object> asyncRun(int workers, AsyncOp op) throws Exception {
    List<RaftClient> pool = clientPool(workers);
    long start = System.nanoTime() + (long) (warmupS * 1e9);
    long end = start + (long) (durationS * 1e9);
    Result[] rs = new Result[workers];
    CountDownLatch done = new CountDownLatch(workers);
    for (int w = 0; w < workers; w++) {
      rs[w] = new Result();
      new Chain(pool.get(w % pool.size()), w, op, rs[w], start, end, done).next();
    }
    sleepUntil(start);
    double[] c0 = Stats.cpuSeconds();
    sleepUntil(end);
    double[] c1 = Stats.cpuSeconds();
    if (!done.await(opTimeoutMs + 10_000, TimeUnit.MILLISECONDS)) {
      System.err.println("ratis-loadgen: some operations did not finish");
    }
    Result all = new Result();
    for (Result r : rs) {
      synchronized (r) {
        all.merge(r);
      }
    }
    closeAll(pool);
    return result(all, start, end, durationS, c1[0] - c0[0], c1[1] - c0[1]);
  }

  /** One worker: issues the next op when the previous one completes. */
  private final class Chain {
    private final RaftClient client;
    private final int worker;
    private final AsyncOp op;
    private final Result r;
    private final long start;
    private final long end;
    private final CountDownLatch done;

    Chain(RaftClient client, int worker, AsyncOp op, Result r, long start, long end,
        CountDownLatch done) {
      this.client = client;
      this.worker = worker;
      this.op = op;
      this.r = r;
      this.start = start;
      this.end = end;
      this.done = done;
    }

    void next() {
      // Loops while ops complete synchronously; otherwise continues in the callback.
      while (true) {
        if (System.nanoTime() >= end) {
          done.countDown();
          return;
        }
        final long t0 = System.nanoTime();
        CompletableFuture<RaftClientReply> f =
            op.start(client, worker).orTimeout(opTimeoutMs, TimeUnit.MILLISECONDS);
        if (!f.isDone()) {
          f.whenComplete((reply, err) -> {
            record(t0, reply, err);
            next();
          });
          return;
        }
        RaftClientReply reply = null;
        Throwable err = null;
        try {
          reply = f.join();
        } catch (RuntimeException e) {
          err = e;
        }
        record(t0, reply, err);
      }
    }

    private void record(long t0, RaftClientReply reply, Throwable err) {
      long t1 = System.nanoTime();
      if (t1 < start || t1 > end) { // counts if it completes inside the window
        return;
      }
      synchronized (r) {
        if (err != null || reply == null || !reply.isSuccess()) {
          r.errors++;
        } else {
          r.ops++;
          r.lat.add(t1 - t0);
        }
      }
    }
  }

  /**
   * Writes keys 0..n-1 once each with `workers` in flight; issues no new
   * write after limitS seconds.
   */
  private Result fill(int n, int workers, double limitS) throws Exception {
    List<RaftClient> pool = clientPool(workers);
    AtomicInteger next = new AtomicInteger();
    Result all = new Result();
    long deadline = System.nanoTime() + (long) (limitS * 1e9);
    List<CompletableFuture<Void>> chains = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      RaftClient c = pool.get(w % pool.size());
      chains.add(fillChain(c, next, n, deadline, all));
    }
    CompletableFuture.allOf(chains.toArray(new CompletableFuture[0]))
        .get((long) limitS + opTimeoutMs / 1000 + 30, TimeUnit.SECONDS);
    closeAll(pool);
    return all;
  }

  private CompletableFuture<Void> fillChain(RaftClient c, AtomicInteger next, int n,
      long deadline, Result all) {
    int k = next.getAndIncrement();
    if (k >= n || System.nanoTime() > deadline) {
      return CompletableFuture.completedFuture(null);
    }
    long t0 = System.nanoTime();
    return c.async().send(Ops.put(key(k), value))
        .orTimeout(opTimeoutMs, TimeUnit.MILLISECONDS)
        .handle((reply, err) -> {
          synchronized (all) {
            if (err != null || !reply.isSuccess()) {
              all.errors++;
            } else {
              all.ops++;
              all.lat.add(System.nanoTime() - t0);
            }
          }
          return null;
        })
        .thenComposeAsync(v -> fillChain(c, next, n, deadline, all));
  }

  /**
   * lock: each worker its own lock, one op = ACQUIRE + RELEASE (latency of the
   * pair; the acquire part goes to acquire_p50/p99). contended: `clients`
   * clients on one lock, hold 0 ms, one op = one acquisition (a handoff),
   * latency = acquire wait. Every lock client is its own RaftClient.
   */
  private Map<String, Object> locks() throws Exception {
    boolean contended = workload.equals("contended");
    int n = contended ? clients : concurrency;
    concurrency = n;
    List<RaftClient> cs = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      cs.add(newClient());
    }
    long start = System.nanoTime() + (long) (warmupS * 1e9);
    long end = start + (long) (durationS * 1e9);
    Result[] rs = new Result[n];
    Thread[] ts = new Thread[n];
    for (int i = 0; i < n; i++) {
      final RaftClient c = cs.get(i);
      final Result r = rs[i] = new Result();
      final String lock = contended ? "bench/lock/shared" : "bench/lock/" + i;
      final String owner = UUID.randomUUID().toString();
      ts[i] = new Thread(() -> lockLoop(c, lock, owner, r, start, end), "lock-" + i);
      ts[i].start();
    }
    sleepUntil(start);
    double[] c0 = Stats.cpuSeconds();
    sleepUntil(end);
    double[] c1 = Stats.cpuSeconds();
    Result all = new Result();
    for (int i = 0; i < n; i++) {
      ts[i].join(opTimeoutMs * 2 + 10_000);
      synchronized (rs[i]) {
        all.merge(rs[i]);
      }
    }
    closeAll(cs);
    all.aux.sort();
    Map<String, Object> m = result(all, start, end, durationS, c1[0] - c0[0], c1[1] - c0[1]);
    if (contended) {
      m.put("p50_ms", all.aux.percentileMs(0.50));
      m.put("p99_ms", all.aux.percentileMs(0.99));
      m.put("p999_ms", all.aux.percentileMs(0.999));
      m.put("latency", "acquire_wait");
      m.put("hold_ms", 0);
    } else {
      m.put("latency", "acquire_plus_release");
      m.put("acquire_p50_ms", all.aux.percentileMs(0.50));
      m.put("acquire_p99_ms", all.aux.percentileMs(0.99));
    }
    return m;
  }

  private void lockLoop(RaftClient c, String lock, String owner, Result r, long start, long end) {
    while (System.nanoTime() < end) {
      long t0 = System.nanoTime();
      boolean ok;
      long acquired = 0;
      try {
        ok = isReply(c.async().send(Ops.acquire(lock, owner)), "GRANTED");
        acquired = System.nanoTime();
        ok = ok && isReply(c.async().send(Ops.release(lock, owner)), "RELEASED");
      } catch (ExecutionException | TimeoutException e) {
        ok = false;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      long t1 = System.nanoTime();
      if (t1 < start || t1 > end) { // counts if it completes inside the window
        continue;
      }
      synchronized (r) {
        if (ok) {
          r.ops++;
          r.lat.add(t1 - t0);
          r.aux.add(acquired - t0);
        } else {
          r.errors++;
        }
      }
    }
  }

  private boolean isReply(CompletableFuture<RaftClientReply> f, String expected)
      throws ExecutionException, TimeoutException, InterruptedException {
    RaftClientReply reply = f.get(opTimeoutMs, TimeUnit.MILLISECONDS);
    return reply.isSuccess() && reply.getMessage().getContent().toStringUtf8().equals(expected);
  }

  /**
   * Writes at concurrency 1 and records the wall-clock time of every
   * acknowledged write, also of writes whose wait timed out (their replies
   * still count as acknowledgements when they arrive). Prints "first-ack" to
   * stderr at the first acknowledgement and runs --duration-s from then on (at
   * most 30 s waiting for it). Reports gaps between consecutive
   * acknowledgements longer than --gap-ms as [start, end] Unix seconds, so the
   * harness can find the gap containing its kill time.
   */
  private Map<String, Object> failoverProbe() throws Exception {
    concurrency = 1;
    RaftClient c = newClient();
    ConcurrentLinkedQueue<Long> acksMicros = new ConcurrentLinkedQueue<>();
    Stats.Latencies lat = new Stats.Latencies();
    long errors = 0;
    double[] c0 = Stats.cpuSeconds();
    long t0 = System.nanoTime();
    long end = t0 + 30_000_000_000L;
    for (int i = 0; System.nanoTime() < end; i++) {
      long s = System.nanoTime();
      CompletableFuture<RaftClientReply> f = c.async().send(Ops.put(key(i % keys), value));
      f.whenComplete((reply, err) -> {
        if (err == null && reply.isSuccess()) {
          acksMicros.add(nowMicros());
        }
      });
      try {
        RaftClientReply reply = f.get(opTimeoutMs, TimeUnit.MILLISECONDS);
        if (reply.isSuccess()) {
          if (lat.size() == 0) {
            System.err.println("first-ack"); // the harness kills the leader after this
            System.err.flush();
            end = System.nanoTime() + (long) (durationS * 1e9);
          }
          lat.add(System.nanoTime() - s);
        } else {
          errors++;
        }
      } catch (TimeoutException | ExecutionException e) {
        errors++;
      }
    }
    long t1 = System.nanoTime();
    double[] c1 = Stats.cpuSeconds();
    Result r = new Result();
    r.lat.addAll(lat);
    r.ops = lat.size();
    r.errors = errors;
    Map<String, Object> m = result(r, t0, t1, (t1 - t0) / 1e9, c1[0] - c0[0], c1[1] - c0[1]);
    List<Long> acks = new ArrayList<>(acksMicros);
    acks.sort(null);
    List<double[]> gaps = new ArrayList<>();
    long maxGap = 0;
    for (int i = 1; i < acks.size(); i++) {
      long g = acks.get(i) - acks.get(i - 1);
      maxGap = Math.max(maxGap, g);
      if (g >= gapMs * 1000) {
        gaps.add(new double[] {acks.get(i - 1) / 1e6, acks.get(i) / 1e6});
      }
    }
    m.put("gaps", gaps);
    m.put("max_gap_ms", maxGap / 1000.0);
    if (!acks.isEmpty()) {
      m.put("first_ack", acks.get(0) / 1e6);
      m.put("last_ack", acks.get(acks.size() - 1) / 1e6);
    }
    c.close();
    return m;
  }

  private static long nowMicros() {
    java.time.Instant t = java.time.Instant.now();
    return t.getEpochSecond() * 1_000_000L + t.getNano() / 1000;
  }

  /**
   * Asks every peer for its group info; prints the leader's endpoint, the
   * highest term seen and how many peers answered ("up").
   */
  private Map<String, Object> leader() {
    String leader = "";
    long term = 0;
    int up = 0;
    for (RaftPeer p : group.getPeers()) {
      try (RaftClient c = RaftClient.newBuilder().setProperties(new RaftProperties())
          .setRaftGroup(group).setRetryPolicy(RetryPolicies.noRetry()).build()) {
        GroupInfoReply info = c.getGroupManagementApi(p.getId()).info(Group.ID);
        up++;
        if (info.getLogInfoProto().hasLastEntry()) {
          term = Math.max(term, info.getLogInfoProto().getLastEntry().getTerm());
        }
        if (info.getRoleInfoProto().getRole() == RaftPeerRole.LEADER) {
          leader = p.getAddress();
          term = Math.max(term, info.getRoleInfoProto().getLeaderInfo().getTerm());
        }
      } catch (IOException | RuntimeException e) {
        // peer down or not ready: skip it
      }
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("system", "ratis");
    m.put("workload", "leader");
    m.put("leader", leader);
    m.put("term", term);
    m.put("up", up);
    if (leader.isEmpty()) {
      m.put("error", "no leader");
    }
    return m;
  }

  private static void sleepUntil(long nanoTime) throws InterruptedException {
    long d;
    while ((d = nanoTime - System.nanoTime()) > 0) {
      TimeUnit.NANOSECONDS.sleep(d);
    }
  }
}
