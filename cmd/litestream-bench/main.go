// Command litestream-bench measures the library against its performance
// budget and prints one table: figure, budget, baseline, measured, result.
//
// Every figure is a ratio or bound measured within one run, with the file
// backend. Memory and idle CPU are measured in child processes (this binary
// re-run with LITESTREAM_BENCH_CHILD set) so the harness does not count.
//
//	go run ./cmd/litestream-bench            # full sizes: 256MB, 1GB, 4GB
//	go run ./cmd/litestream-bench -quick     # small sizes, short windows
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"
)

// config holds the sizes and durations of one run.
type config struct {
	dir         string
	sizes       []int64 // database sizes for restore, memory and snapshot figures
	writeDur    time.Duration
	lagSamples  int
	fastSamples int
	sustained   time.Duration
	idleWarmup  time.Duration
	idleWindow  time.Duration
	latencyDur  time.Duration

	requestWarmup time.Duration // before counting requests per day
	requestWindow time.Duration // requests counted over this, extrapolated to a day

	scaleDBs    int           // databases in one Store
	scaleWarmup time.Duration // after every database replicated, before idle CPU
	scaleWindow time.Duration // idle CPU and 1%-writing lag windows
	scaleFast   bool          // short compaction and retention intervals
}

// row is one line of the result table.
type row struct {
	figure, budget, baseline, measured string
	pass                               bool
	ref                                bool // shown for reference: the budget names another size
}

func main() {
	quick := flag.Bool("quick", false, "small databases and short windows, for development")
	dir := flag.String("dir", "", "scratch directory (default: a new temp dir, removed at exit)")
	sizes := flag.String("sizes", "", "comma-separated database sizes, e.g. 256MB,1GB,4GB")
	only := flag.String("only", "", "comma-separated figures to run: write,lag,idle,restore,requests,vfs,scale (default all)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the harness process to this file")
	flag.Parse()

	if child := os.Getenv(childEnv); child != "" {
		if err := runChild(child, flag.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	cfg := config{
		sizes:       []int64{256 << 20, 1 << 30, 4 << 30},
		writeDur:    10 * time.Second,
		lagSamples:  20,
		fastSamples: 400,
		sustained:   10 * time.Second,
		// The first minute after the last write may hold the time-based
		// checkpoint and the L1 compaction that follows it.
		idleWarmup: 95 * time.Second,
		idleWindow: 30 * time.Second,
		latencyDur: 10 * time.Second,
		// Past the first L1 and L2 compactions and L0 retention's first deletions.
		requestWarmup: 6 * time.Minute,
		requestWindow: 10 * time.Minute,
		// At default settings L0 retention (5 min) and the L2 boundary
		// settle before the idle window.
		scaleDBs:    10000,
		scaleWarmup: 7 * time.Minute,
		scaleWindow: time.Minute,
	}
	if *quick {
		cfg.sizes = []int64{32 << 20, 64 << 20}
		cfg.writeDur = 3 * time.Second
		cfg.lagSamples = 6
		cfg.fastSamples = 100
		cfg.sustained = 4 * time.Second
		cfg.idleWarmup = 16 * time.Second // past the first L0 retention pass
		cfg.idleWindow = 10 * time.Second
		cfg.latencyDur = 3 * time.Second
		cfg.requestWarmup = 35 * time.Second
		cfg.requestWindow = time.Minute
		cfg.scaleDBs, cfg.scaleWarmup, cfg.scaleWindow, cfg.scaleFast = 500, 80*time.Second, 15*time.Second, true // past the time-based checkpoint (1 min)
	}
	if *sizes != "" {
		var err error
		if cfg.sizes, err = parseSizes(*sizes); err != nil {
			fatal(err)
		}
	}

	cfg.dir = *dir
	if cfg.dir == "" {
		d, err := os.MkdirTemp("", "litestream-bench-")
		if err != nil {
			fatal(err)
		}
		defer func() { _ = os.RemoveAll(d) }()
		cfg.dir = d
	}

	figures := map[string]func(config) ([]row, error){
		"write":    benchWrite,
		"lag":      benchLag,
		"idle":     benchIdle,
		"restore":  benchRestore,
		"requests": benchRequests,
		"vfs":      benchVFS,
		"scale":    benchScale,
	}
	names := []string{"write", "lag", "idle", "restore", "requests", "vfs", "scale"}
	if *only != "" {
		names = strings.Split(*only, ",")
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	start := time.Now()
	var rows []row
	failed := false
	for _, name := range names {
		fn, ok := figures[name]
		if !ok {
			fatal(fmt.Errorf("unknown figure %q", name))
		}
		fmt.Fprintf(os.Stderr, "== %s (%s elapsed)\n", name, time.Since(start).Round(time.Second))
		r, err := fn(cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			rows = append(rows, row{figure: name, measured: "error: " + err.Error()})
		}
		rows = append(rows, r...)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tbudget\tbaseline\tmeasured\tresult")
	for _, r := range rows {
		result := "pass"
		switch {
		case r.ref:
			result = "ref"
		case !r.pass:
			result, failed = "FAIL", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.figure, r.budget, r.baseline, r.measured, result)
	}
	_ = tw.Flush()
	fmt.Printf("total time %s\n", time.Since(start).Round(time.Second))
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func parseSizes(s string) ([]int64, error) {
	var sizes []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.ToUpper(strings.TrimSpace(f))
		mult := int64(1)
		switch {
		case strings.HasSuffix(f, "GB"):
			mult, f = 1<<30, strings.TrimSuffix(f, "GB")
		case strings.HasSuffix(f, "MB"):
			mult, f = 1<<20, strings.TrimSuffix(f, "MB")
		}
		var n int64
		if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("invalid size %q", f)
		}
		sizes = append(sizes, n*mult)
	}
	return sizes, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

func fmtSize(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%dGB", n>>30)
	}
	return fmt.Sprintf("%dMB", n>>20)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
