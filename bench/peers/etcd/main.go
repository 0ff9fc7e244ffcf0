// etcd-loadgen: the benchmark load generator for etcd. It implements the
// common load-generator contract of bench/README.md:
//
//	etcd-loadgen --endpoints E1,E2,E3 --workload W --concurrency N
//	             --duration-s S --value-size 256 [--keys K] [--clients N]
//	             [--warmup-s W] [--op-timeout-ms T] [--gap-ms G]
//
// and prints exactly one JSON object line on stdout (diagnostics go to
// stderr). Endpoints are host:port client addresses of the members.
//
// Operations: put = KV Put; get = KV Get (etcd's default, linearizable);
// lock = concurrency.Session + concurrency.Mutex Lock then Unlock.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

type options struct {
	endpoints   []string
	workload    string
	concurrency int
	durationS   float64
	warmupS     float64
	valueSize   int
	keys        int
	clients     int
	opTimeout   time.Duration
	gap         time.Duration
}

func parseOptions() options {
	var o options
	var endpoints string
	var opTimeoutMs, gapMs int
	flag.StringVar(&endpoints, "endpoints", "", "comma-separated host:port client endpoints")
	flag.StringVar(&o.workload, "workload", "put", "put|get|lock|contended|failover-probe|fill|leader")
	flag.IntVar(&o.concurrency, "concurrency", 1, "operations in flight (workers)")
	flag.Float64Var(&o.durationS, "duration-s", 5, "measured seconds (upper bound for fill)")
	flag.Float64Var(&o.warmupS, "warmup-s", 0, "seconds run before measuring (not counted)")
	flag.IntVar(&o.valueSize, "value-size", 256, "value bytes")
	flag.IntVar(&o.keys, "keys", 1000, "key space (put/get) or keys written (fill)")
	flag.IntVar(&o.clients, "clients", 0, "lock clients for contended (default: concurrency)")
	flag.IntVar(&opTimeoutMs, "op-timeout-ms", 5000, "per-operation timeout")
	flag.IntVar(&gapMs, "gap-ms", 50, "failover-probe: report gaps between acks longer than this")
	flag.Parse()
	o.endpoints = strings.Split(endpoints, ",")
	if endpoints == "" {
		fatalf("--endpoints is required")
	}
	if o.clients <= 0 {
		o.clients = o.concurrency
	}
	o.opTimeout = time.Duration(opTimeoutMs) * time.Millisecond
	o.gap = time.Duration(gapMs) * time.Millisecond
	return o
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "etcd-loadgen: "+format+"\n", args...)
	os.Exit(2)
}

// newClient returns a client that has completed one read, so connection
// set-up happens before any measured window.
func newClient(o options) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   o.endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		fatalf("connect: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "bench/connect"); err != nil {
		fmt.Fprintf(os.Stderr, "etcd-loadgen: connect: %v\n", err)
	}
	return cli
}

// cpuSeconds returns this process's user and system CPU time.
func cpuSeconds() (float64, float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime), tv(ru.Stime)
}

// window is the measured interval: an operation counts if it completes inside
// it (one that started during the warm-up counts with its full latency).
type window struct{ start, end time.Time }

func (w window) counts(t1 time.Time) bool { return !t1.Before(w.start) && !t1.After(w.end) }

// recorder collects one worker's latencies; merged after the run.
type recorder struct {
	lat    []time.Duration // primary latency (the op, or acquire-wait for contended)
	aux    []time.Duration // secondary latency (lock: acquire alone)
	ops    int64
	errors int64
}

func merge(recs []recorder) recorder {
	var all recorder
	for i := range recs {
		all.ops += recs[i].ops
		all.errors += recs[i].errors
		all.lat = append(all.lat, recs[i].lat...)
		all.aux = append(all.aux, recs[i].aux...)
	}
	return all
}

// runWorkers runs op on n workers until the window ends and returns the
// merged recorder plus the loadgen CPU used inside the window. An op returns
// an optional secondary latency (recorded in aux) and its error.
func runWorkers(n int, w window, op func(worker int) (time.Duration, error)) (recorder, float64, float64) {
	recs := make([]recorder, n)
	var wg sync.WaitGroup
	var u0, s0 float64
	cpuStart := make(chan struct{})
	go func() {
		time.Sleep(time.Until(w.start))
		u0, s0 = cpuSeconds()
		close(cpuStart)
	}()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := &recs[i]
			for time.Now().Before(w.end) {
				t0 := time.Now()
				aux, err := op(i)
				t1 := time.Now()
				if !w.counts(t1) {
					continue
				}
				if err != nil {
					r.errors++
					continue
				}
				r.ops++
				r.lat = append(r.lat, t1.Sub(t0))
				if aux > 0 {
					r.aux = append(r.aux, aux)
				}
			}
		}(i)
	}
	time.Sleep(time.Until(w.end))
	<-cpuStart
	u1, s1 := cpuSeconds()
	wg.Wait()
	return merge(recs), u1 - u0, s1 - s0
}

// percentileMs returns the q-quantile (nearest rank) in milliseconds.
func percentileMs(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	idx := int(q*float64(len(d))+0.999999) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(d) {
		idx = len(d) - 1
	}
	return float64(d[idx].Microseconds()) / 1000
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

func key(i int) string { return fmt.Sprintf("bench/k%08d", i) }

func emit(m map[string]any) {
	b, err := json.Marshal(m)
	if err != nil {
		fatalf("json: %v", err)
	}
	fmt.Println(string(b))
}

// baseResult is the contract's result line; w is the measured window.
func baseResult(o options, r recorder, w window, dur, cpuU, cpuS float64) map[string]any {
	sortDurations(r.lat)
	return map[string]any{
		"t_start": unix(w.start), "t_end": unix(w.end),
		"system": "etcd", "workload": o.workload, "concurrency": o.concurrency,
		"ops": r.ops, "errors": r.errors, "duration_s": dur,
		"throughput": float64(r.ops) / dur,
		"p50_ms":     percentileMs(r.lat, 0.50),
		"p99_ms":     percentileMs(r.lat, 0.99),
		"p999_ms":    percentileMs(r.lat, 0.999),
		"cpu_user_s": cpuU, "cpu_sys_s": cpuS,
	}
}

func main() {
	o := parseOptions()
	value := make([]byte, o.valueSize)
	rand.New(rand.NewSource(1)).Read(value)
	val := string(value)
	// The measured window starts warmup-s after the clients are connected.
	newWindow := func() window {
		w := window{start: time.Now().Add(secs(o.warmupS))}
		w.end = w.start.Add(secs(o.durationS))
		return w
	}

	switch o.workload {
	case "leader":
		leader(o)
	case "put":
		kvWorkload(o, newWindow, func(ctx context.Context, cli *clientv3.Client) error {
			_, err := cli.Put(ctx, key(rand.Intn(o.keys)), val)
			return err
		})
	case "get":
		// Reads keys of the --keys space; earlier puts wrote them (a missing
		// key costs the same linearizable read).
		kvWorkload(o, newWindow, func(ctx context.Context, cli *clientv3.Client) error {
			_, err := cli.Get(ctx, key(rand.Intn(o.keys)))
			return err
		})
	case "lock", "contended":
		lockWorkload(o)
	case "failover-probe":
		failoverProbe(o, val)
	case "fill":
		cli := newClient(o)
		defer cli.Close()
		u0, s0 := cpuSeconds()
		t0 := time.Now()
		r := fill(cli, o, val, o.keys, secs(o.durationS))
		t1 := time.Now()
		u1, s1 := cpuSeconds()
		emit(baseResult(o, r, window{t0, t1}, t1.Sub(t0).Seconds(), u1-u0, s1-s0))
	default:
		fatalf("unknown workload %q", o.workload)
	}
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// kvWorkload runs op on o.concurrency workers sharing one client and prints
// the result; each op gets --op-timeout-ms.
func kvWorkload(o options, newWindow func() window,
	op func(context.Context, *clientv3.Client) error) {
	cli := newClient(o)
	defer cli.Close()
	w := newWindow()
	r, u, s := runWorkers(o.concurrency, w, func(int) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), o.opTimeout)
		defer cancel()
		return 0, op(ctx, cli)
	})
	emit(baseResult(o, r, w, o.durationS, u, s))
}

// fill writes keys 0..n-1 once each with o.concurrency workers, giving up
// after limit.
func fill(cli *clientv3.Client, o options, val string, n int, limit time.Duration) recorder {
	var next atomic.Int64
	recs := make([]recorder, o.concurrency)
	var wg sync.WaitGroup
	deadline := time.Now().Add(limit)
	for i := 0; i < o.concurrency; i++ {
		wg.Add(1)
		go func(r *recorder) {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= n || time.Now().After(deadline) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), o.opTimeout)
				t0 := time.Now()
				_, err := cli.Put(ctx, key(k), val)
				cancel()
				if err != nil {
					r.errors++
					continue
				}
				r.ops++
				r.lat = append(r.lat, time.Since(t0))
			}
		}(&recs[i])
	}
	wg.Wait()
	return merge(recs)
}

// lockWorkload: "lock" = each worker its own lock (uncontended), one op =
// acquire + release; "contended" = o.clients clients on one lock, hold 0 ms,
// one op = one acquisition (handoff), latency = acquire wait.
// Every lock client is a separate clientv3.Client with its own Session
// (lease), as separate processes would be.
func lockWorkload(o options) {
	n := o.concurrency
	if o.workload == "contended" {
		n = o.clients
		o.concurrency = n
	}
	type lockClient struct {
		cli  *clientv3.Client
		sess *concurrency.Session
		mu   *concurrency.Mutex
	}
	lcs := make([]lockClient, n)
	for i := range lcs {
		cli := newClient(o)
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
		if err != nil {
			fatalf("session: %v", err)
		}
		name := "/bench/lock/shared"
		if o.workload == "lock" {
			name = fmt.Sprintf("/bench/lock/%d", i)
		}
		lcs[i] = lockClient{cli, sess, concurrency.NewMutex(sess, name)}
	}
	defer func() {
		for _, lc := range lcs {
			lc.sess.Close()
			lc.cli.Close()
		}
	}()
	// Workers start after the sessions exist; the window starts now.
	w := window{start: time.Now().Add(secs(o.warmupS))}
	w.end = w.start.Add(secs(o.durationS))
	contended := o.workload == "contended"
	// One op = acquire + release (r.lat); its acquire part goes to r.aux.
	r, u, s := runWorkers(n, w, func(i int) (time.Duration, error) {
		lc := lcs[i]
		ctx, cancel := context.WithTimeout(context.Background(), o.opTimeout)
		defer cancel()
		t0 := time.Now()
		if err := lc.mu.Lock(ctx); err != nil {
			return 0, err
		}
		acquired := time.Now()
		return acquired.Sub(t0), lc.mu.Unlock(ctx)
	})
	sortDurations(r.aux)
	res := baseResult(o, r, w, o.durationS, u, s)
	if contended {
		res["p50_ms"] = percentileMs(r.aux, 0.50)
		res["p99_ms"] = percentileMs(r.aux, 0.99)
		res["p999_ms"] = percentileMs(r.aux, 0.999)
		res["latency"] = "acquire_wait"
		res["hold_ms"] = 0
	} else {
		res["latency"] = "acquire_plus_release"
		res["acquire_p50_ms"] = percentileMs(r.aux, 0.50)
		res["acquire_p99_ms"] = percentileMs(r.aux, 0.99)
	}
	emit(res)
}

// failoverProbe writes at concurrency 1 with a per-op timeout and records the
// wall-clock time of every acknowledged write. It prints "first-ack" to stderr
// at the first acknowledgement and runs --duration-s from then on (at most 30 s
// waiting for it). It reports the gaps between consecutive acknowledgements
// longer than --gap-ms as [start, end] pairs of Unix seconds, so the harness
// can find the gap that contains its kill time.
func failoverProbe(o options, val string) {
	cli := newClient(o)
	defer cli.Close()
	o.concurrency = 1
	start := time.Now()
	u0, s0 := cpuSeconds()
	var acks []time.Time
	var lat []time.Duration
	var errs int64
	end := start.Add(30 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), o.opTimeout)
		t0 := time.Now()
		_, err := cli.Put(ctx, key(i%o.keys), val)
		cancel()
		t1 := time.Now()
		if err != nil {
			errs++
			continue
		}
		if len(acks) == 0 {
			fmt.Fprintln(os.Stderr, "first-ack") // the harness kills the leader after this
			end = t1.Add(secs(o.durationS))
		}
		acks = append(acks, t1)
		lat = append(lat, t1.Sub(t0))
	}
	u1, s1 := cpuSeconds()
	r := recorder{lat: lat, ops: int64(len(acks)), errors: errs}
	stop := time.Now()
	res := baseResult(o, r, window{start, stop}, stop.Sub(start).Seconds(), u1-u0, s1-s0)
	res["gaps"], res["max_gap_ms"] = gaps(acks, o.gap)
	if len(acks) > 0 {
		res["first_ack"] = unix(acks[0])
		res["last_ack"] = unix(acks[len(acks)-1])
	}
	emit(res)
}

func unix(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

func gaps(acks []time.Time, minGap time.Duration) ([][2]float64, float64) {
	out := [][2]float64{}
	var maxGap time.Duration
	for i := 1; i < len(acks); i++ {
		g := acks[i].Sub(acks[i-1])
		if g > maxGap {
			maxGap = g
		}
		if g >= minGap {
			out = append(out, [2]float64{unix(acks[i-1]), unix(acks[i])})
		}
	}
	return out, float64(maxGap.Microseconds()) / 1000
}

// leader prints the client endpoint of the current leader, the highest Raft
// term seen and how many members answered ("up"), asking every endpoint for
// its status (members that are down are skipped).
func leader(o options) {
	cli := newClient(o)
	defer cli.Close()
	var term uint64
	leaderEp := ""
	up := 0
	for _, ep := range o.endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err != nil {
			continue
		}
		up++
		if st.RaftTerm > term {
			term = st.RaftTerm
		}
		if st.Leader != 0 && st.Leader == st.Header.MemberId {
			leaderEp = ep
		}
	}
	res := map[string]any{"system": "etcd", "workload": "leader", "leader": leaderEp, "term": term, "up": up}
	if leaderEp == "" {
		res["error"] = "no leader"
	}
	emit(res)
}
