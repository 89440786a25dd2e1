// scale.go measures one Store replicating many small databases (10,000 at
// full size) to the file backend: open time, peak RSS, goroutines and file
// descriptors per database, idle CPU of the whole process once everything
// is compacted, the lag of commits while 1% of the databases write, and
// close time. It runs in a child process so the harness does not count.

package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// scaleResult is the scale child's report.
type scaleResult struct {
	DBs        int           `json:"dbs"`
	Asked      int           `json:"asked"`    // databases asked for; more than DBs when descriptors ran short
	FDLimit    uint64        `json:"fd_limit"` // RLIMIT_NOFILE the child ran with
	Open       time.Duration `json:"open"`
	Close      time.Duration `json:"close"`
	Goroutines int           `json:"goroutines"`  // added by the open store
	FDs        int           `json:"fds"`         // added by the open store, all databases started
	IdleCPU    time.Duration `json:"idle_cpu"`    // user+system over the idle window
	IdleWindow time.Duration `json:"idle_window"` // length of that window
	LagP50     time.Duration `json:"lag_p50"`
	LagP99     time.Duration `json:"lag_p99"`
	LagSamples int           `json:"lag_samples"`
}

func benchScale(cfg config) ([]row, error) {
	dir := filepath.Join(cfg.dir, "scale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res, err := runInChild("scale", dir, strconv.Itoa(cfg.scaleDBs), cfg.scaleWarmup.String(), cfg.scaleWindow.String(), strconv.FormatBool(cfg.scaleFast))
	if err != nil {
		return nil, err
	}
	s := res.Scale
	if s == nil {
		return nil, fmt.Errorf("scale child reported nothing")
	}
	base := fmt.Sprintf("%d databases", s.DBs)
	if s.Asked > s.DBs {
		base = fmt.Sprintf("%d databases (%d asked; the descriptor limit of %d allows %d)", s.DBs, s.Asked, s.FDLimit, s.DBs)
	}
	cpu := float64(s.IdleCPU) / float64(s.IdleWindow) * 100
	per := func(n int) string { return fmt.Sprintf("%d (%.2f per database)", n, float64(n)/float64(s.DBs)) }
	return []row{
		{figure: "scale: open", budget: "ref", baseline: base, measured: s.Open.Round(time.Millisecond).String(), ref: true},
		{figure: "scale: peak RSS", budget: "ref", baseline: base, measured: fmt.Sprintf("%.0fMB (%.0fKB per database)", float64(res.PeakRSS)/(1<<20), float64(res.PeakRSS)/1024/float64(s.DBs)), ref: true},
		{figure: "scale: goroutines", budget: "ref", baseline: base, measured: per(s.Goroutines), ref: true},
		{figure: "scale: file descriptors", budget: "ref", baseline: base, measured: per(s.FDs), ref: true},
		{figure: "scale: idle CPU of one core", budget: "<= 1%", baseline: fmt.Sprintf("%s, %s idle after %s", base, s.IdleWindow, cfg.scaleWarmup), measured: fmt.Sprintf("%.2f%% (%s)", cpu, s.IdleCPU.Round(time.Millisecond)), pass: cpu <= 1},
		{figure: "scale: lag p50, 1% writing", budget: "<= 50.00ms", baseline: fmt.Sprintf("%s, %d samples", base, s.LagSamples), measured: ms(s.LagP50), pass: s.LagP50 <= 50*time.Millisecond},
		{figure: "scale: lag p99, 1% writing", budget: "ref", baseline: fmt.Sprintf("%s, %d samples", base, s.LagSamples), measured: ms(s.LagP99), ref: true},
		{figure: "scale: close", budget: "ref", baseline: base, measured: s.Close.Round(time.Millisecond).String(), ref: true},
	}, nil
}

func openFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

// childScale: args dir, database count, warm-up, idle window, fast (short
// compaction and retention intervals for quick runs).
func childScale(args []string) (res childResult, err error) {
	dir := args[0]
	n, _ := strconv.Atoi(args[1])
	warmup, _ := time.ParseDuration(args[2])
	window, _ := time.ParseDuration(args[3])
	fast := args[4] == "true"

	// About 6 descriptors a database, 8 with headroom: ask for them (root
	// may raise the hard limit). A process that may not gets as many
	// databases as its limit allows, and the row says so.
	const perDB, reserve = 8, 1024
	asked := n
	need := uint64(n*perDB + reserve)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < need {
		want := lim
		want.Cur = need
		if want.Max < need {
			want.Max = need
		}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
			want.Cur = min(need, lim.Max) // a hard limit we may not raise
			want.Max = lim.Max
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		if lim.Cur < need {
			n = max(1, (int(lim.Cur)-reserve)/perDB)
		}
	}

	// Databases of 1 KB to 1 MB, made before the store opens.
	rng := rand.New(rand.NewPCG(1, 2))
	dbs := make([]*litestream.DB, n)
	for i := range dbs {
		path := filepath.Join(dir, fmt.Sprintf("%03d", i%1000), fmt.Sprintf("db%05d", i))
		if err := makeSmallDB(path, 1<<10+rng.IntN(1<<20)); err != nil {
			return res, err
		}
		db := litestream.NewDB(path)
		db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(path+"-replica"))
		dbs[i] = db
	}

	levels := litestream.DefaultCompactionLevels
	if fast {
		levels = litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 5 * time.Second}, {Level: 2, Interval: 15 * time.Second}}
	}
	store := litestream.NewStore(dbs, levels)
	if fast {
		store.L0Retention = 10 * time.Second
		store.L0RetentionCheckInterval = 2 * time.Second
	}
	events := store.Subscribe(1 << 16)
	defer events.Close()
	g0, f0 := runtime.NumGoroutine(), openFDs()
	start := time.Now()
	if err := store.Open(context.Background()); err != nil {
		return res, err
	}
	s := &scaleResult{DBs: n, Asked: asked, FDLimit: lim.Cur, Open: time.Since(start)}
	res.Scale = s

	// Every database starts (its first sync opens SQLite) and uploads.
	uploaded := make(map[string]bool, n)
	deadline := time.Now().Add(10 * time.Minute)
	for len(uploaded) < n {
		select {
		case e := <-events.C:
			if e.Type == litestream.EventUploaded {
				uploaded[e.DB] = true
			}
		case <-time.After(time.Until(deadline)):
			return res, fmt.Errorf("only %d of %d databases replicated within 10 minutes", len(uploaded), n)
		}
	}
	s.Goroutines, s.FDs = runtime.NumGoroutine()-g0, openFDs()-f0

	// Idle: nothing written for warm-up (compaction, snapshots, L0
	// retention settle), then CPU over the window.
	drain := func(d time.Duration) {
		for end := time.After(d); ; {
			select {
			case <-events.C:
			case <-end:
				return
			}
		}
	}
	drain(warmup)
	cpu0 := cpuTime()
	drain(window)
	s.IdleCPU, s.IdleWindow = cpuTime()-cpu0, window

	// 1% of the databases write, each every 1.2 to 2.2 s; lag is from a
	// commit returning to the upload event of its TXID.
	writers := max(1, n/100)
	var mu sync.Mutex
	pending := make(map[string]time.Time) // db path -> commit time of a commit not yet seen uploaded
	var lags []time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		db := dbs[w*(n/writers)]
		app, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
		if err != nil {
			return res, err
		}
		defer func() { _ = app.Close() }()
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(1200+r.IntN(1000)) * time.Millisecond): // 1.2 to 2.2 SyncIntervals apart, as the lag figure
				}
				mu.Lock()
				_, waiting := pending[db.Path()]
				mu.Unlock()
				if waiting {
					continue
				}
				if _, err := app.Exec(`INSERT INTO t (v) VALUES (randomblob(100))`); err != nil {
					return
				}
				mu.Lock()
				pending[db.Path()] = time.Now()
				mu.Unlock()
			}
		}(uint64(w))
	}
	end := time.After(window)
loop:
	for {
		select {
		case e := <-events.C:
			if e.Type != litestream.EventUploaded {
				continue
			}
			mu.Lock()
			if at, ok := pending[e.DB]; ok {
				lags = append(lags, time.Since(at))
				delete(pending, e.DB)
			}
			mu.Unlock()
		case <-end:
			break loop
		}
	}
	close(stop)
	wg.Wait()
	s.LagSamples, s.LagP50, s.LagP99 = len(lags), percentile(lags, 50), percentile(lags, 99)

	start = time.Now()
	if err := store.Close(context.Background()); err != nil {
		return res, err
	}
	s.Close = time.Since(start)
	return res, nil
}

// makeSmallDB writes a WAL-mode database of about size bytes.
func makeSmallDB(path string, size int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	sqldb, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=synchronous(off)")
	if err != nil {
		return err
	}
	defer func() { _ = sqldb.Close() }()
	if _, err := sqldb.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		return err
	}
	_, err = sqldb.Exec(`INSERT INTO t (v) VALUES (randomblob(?))`, size)
	return err
}
