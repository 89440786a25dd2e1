// Idle and restore benchmarks.

package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
)

// benchIdle runs a replicated app that stops writing, in a child process,
// and counts its backend requests, files and CPU time in an idle window.
func benchIdle(cfg config) ([]row, error) {
	dir := filepath.Join(cfg.dir, "idle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res, err := runInChild("idle", dir, cfg.idleWarmup.String(), cfg.idleWindow.String())
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("%s idle after %s", cfg.idleWindow, cfg.idleWarmup)
	cpu := float64(res.CPU) / float64(cfg.idleWindow) * 100
	return []row{
		{figure: "idle: files written to replica", budget: "0", baseline: base, measured: fmt.Sprintf("%d writes, %d new files", res.Idle.Writes, res.Files), pass: res.Idle.Writes == 0 && res.Files == 0},
		{figure: "idle: backend requests", budget: "0", baseline: base, measured: idleCalls(res.Idle), pass: res.Idle.Calls == 0},
		{figure: "idle: CPU of one core", budget: "< 0.05%", baseline: base, measured: fmt.Sprintf("%.3f%% (%s)", cpu, res.CPU), pass: cpu < 0.05},
	}, nil
}

// benchRestore, for each size: times an fsynced copy, replicates from
// scratch and restores in child processes (peak RSS of each), and at the
// size nearest 1GB measures app commit latency during a snapshot.
func benchRestore(cfg config) ([]row, error) {
	var rows []row
	latencySize := cfg.sizes[0]
	for _, size := range cfg.sizes {
		if abs(size-(1<<30)) < abs(latencySize-(1<<30)) {
			latencySize = size
		}
	}
	for _, size := range cfg.sizes {
		r, err := benchSize(cfg, size, size == latencySize)
		rows = append(rows, r...)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", fmtSize(size), err)
		}
	}
	return rows, nil
}

func benchSize(cfg config, size int64, at1GB bool) ([]row, error) {
	dir := filepath.Join(cfg.dir, "size-"+fmtSize(size))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path, replicaDir := filepath.Join(dir, "db"), filepath.Join(dir, "replica")
	name := fmtSize(size)

	fmt.Fprintf(os.Stderr, "   %s: generating\n", name)
	if err := genDB(path, size); err != nil {
		return nil, err
	}
	copyDur, err := copyFsynced(path, filepath.Join(dir, "copy"))
	if err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(dir, "copy"))

	fmt.Fprintf(os.Stderr, "   %s: replicating\n", name)
	repl, err := runInChild("replicate", path, replicaDir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "   %s: restoring\n", name)
	out := filepath.Join(dir, "restored")
	rest, err := runInChild("restore", replicaDir, out)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(out)

	const memBudget = 64 << 20
	ratio := float64(rest.Duration) / float64(copyDur)
	rows := []row{
		// The time budget is for 1 GB; other sizes are shown beside it.
		{figure: "restore time vs fsynced copy, " + name, budget: "<= 2.0x", baseline: copyDur.Round(time.Millisecond).String(), measured: fmt.Sprintf("%s (%.2fx)", rest.Duration.Round(time.Millisecond), ratio), pass: ratio <= 2, ref: !at1GB},
		{figure: "restore peak RSS, " + name, budget: "< 64MB", baseline: "", measured: fmt.Sprintf("%.1fMB", float64(rest.PeakRSS)/(1<<20)), pass: rest.PeakRSS < memBudget},
		{figure: "replicate peak RSS (L0, L1, snapshot), " + name, budget: "< 64MB", baseline: repl.Duration.Round(time.Millisecond).String(), measured: fmt.Sprintf("%.1fMB", float64(repl.PeakRSS)/(1<<20)), pass: repl.PeakRSS < memBudget},
	}
	if !at1GB {
		return rows, nil
	}

	fmt.Fprintf(os.Stderr, "   %s: commit latency during snapshot\n", name)
	base, during, err := snapshotLatency(path, replicaDir, cfg.latencyDur)
	if err != nil {
		return rows, err
	}
	return append(rows, row{
		figure:   "commit p99 during snapshot, " + name,
		budget:   "<= 2.0x",
		baseline: ms(base),
		measured: fmt.Sprintf("%s (%.2fx)", ms(during), float64(during)/float64(base)),
		pass:     during <= 2*base,
	}), nil
}

// snapshotLatency returns the app's commit latency p99 with the library
// running, first without and then during a snapshot of the database.
func snapshotLatency(path, replicaDir string, d time.Duration) (base, during time.Duration, err error) {
	app, err := openApp(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = app.Close() }()
	r, err := openReplicated(path, replicaDir, litestream.DefaultMonitorInterval, litestream.DefaultSyncInterval, false)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = r.close() }()
	if err := insert(app); err != nil {
		return 0, 0, err
	}
	if err := r.waitCaughtUp(5 * time.Minute); err != nil {
		return 0, 0, err
	}

	lats, err := pacedCommits(app, d, nil)
	if err != nil {
		return 0, 0, err
	}
	base = percentile(lats, 99)

	done := make(chan error, 1)
	go func() {
		_, err := r.db.Snapshot(context.Background())
		done <- err
	}()
	if lats, err = pacedCommits(app, 0, done); err != nil {
		return 0, 0, err
	}
	return base, percentile(lats, 99), nil
}

// pacedCommits commits a row every 2ms and records each commit's latency,
// for d or, if d is zero, until done delivers (its error is returned).
func pacedCommits(app *sql.DB, d time.Duration, done <-chan error) ([]time.Duration, error) {
	var lats []time.Duration
	start := time.Now()
	for d == 0 || time.Since(start) < d {
		t := time.Now()
		if err := insert(app); err != nil {
			return nil, err
		}
		lats = append(lats, time.Since(t))
		select {
		case err := <-done:
			return lats, err
		case <-time.After(2 * time.Millisecond):
		}
	}
	return lats, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func idleCalls(c counts) string {
	if c.Calls == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (last %s)", c.Calls, c.Last)
}
