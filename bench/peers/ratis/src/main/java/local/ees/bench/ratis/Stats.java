package local.ees.bench.ratis;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/** Latency lists, percentiles, process CPU and one-line JSON output. */
final class Stats {
  private Stats() {}

  /** A growable list of latencies in nanoseconds; one writer at a time. */
  static final class Latencies {
    private long[] a = new long[1024];
    private int n;

    void add(long nanos) {
      if (n == a.length) {
        a = Arrays.copyOf(a, n * 2);
      }
      a[n++] = nanos;
    }

    void addAll(Latencies o) {
      for (int i = 0; i < o.n; i++) {
        add(o.a[i]);
      }
    }

    int size() {
      return n;
    }

    void sort() {
      Arrays.sort(a, 0, n);
    }

    /** q-quantile (nearest rank) in ms of a sorted list; 0 when empty. */
    double percentileMs(double q) {
      if (n == 0) {
        return 0;
      }
      int idx = (int) Math.ceil(q * n) - 1;
      idx = Math.max(0, Math.min(n - 1, idx));
      return Math.round(a[idx] / 1000.0) / 1000.0;
    }
  }

  /** [user, sys] CPU seconds of this process (from /proc/self/stat). */
  static double[] cpuSeconds() {
    try {
      String s = new String(Files.readAllBytes(Paths.get("/proc/self/stat")));
      // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
      String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
      double tick = 100.0; // USER_HZ on Linux
      return new double[] {Long.parseLong(f[11]) / tick, Long.parseLong(f[12]) / tick};
    } catch (IOException | RuntimeException e) {
      com.sun.management.OperatingSystemMXBean os =
          (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
      return new double[] {os.getProcessCpuTime() / 1e9, 0};
    }
  }

  /** Serialises maps, lists, arrays of doubles, strings, numbers and booleans. */
  static String json(Object o) {
    StringBuilder b = new StringBuilder();
    write(b, o);
    return b.toString();
  }

  private static void write(StringBuilder b, Object o) {
    if (o == null) {
      b.append("null");
    } else if (o instanceof String) {
      b.append('"');
      for (char c : ((String) o).toCharArray()) {
        if (c == '"' || c == '\\') {
          b.append('\\').append(c);
        } else if (c < 0x20) {
          b.append(String.format("\\u%04x", (int) c));
        } else {
          b.append(c);
        }
      }
      b.append('"');
    } else if (o instanceof Double || o instanceof Float) {
      double d = ((Number) o).doubleValue();
      b.append(Double.isFinite(d) ? Double.toString(d) : "null");
    } else if (o instanceof Number || o instanceof Boolean) {
      b.append(o);
    } else if (o instanceof Map) {
      b.append('{');
      Iterator<? extends Map.Entry<?, ?>> it = ((Map<?, ?>) o).entrySet().iterator();
      while (it.hasNext()) {
        Map.Entry<?, ?> e = it.next();
        write(b, e.getKey().toString());
        b.append(':');
        write(b, e.getValue());
        if (it.hasNext()) {
          b.append(',');
        }
      }
      b.append('}');
    } else if (o instanceof List) {
      b.append('[');
      List<?> l = (List<?>) o;
      for (int i = 0; i < l.size(); i++) {
        if (i > 0) {
          b.append(',');
        }
        write(b, l.get(i));
      }
      b.append(']');
    } else if (o instanceof double[]) {
      double[] d = (double[]) o;
      b.append('[');
      for (int i = 0; i < d.length; i++) {
        if (i > 0) {
          b.append(',');
        }
        write(b, d[i]);
      }
      b.append(']');
    } else {
      write(b, o.toString());
    }
  }
}
