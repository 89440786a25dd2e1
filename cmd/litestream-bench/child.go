// Running benchmark parts in child processes of this binary.

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// childEnv selects the child mode when this binary re-runs itself.
const childEnv = "LITESTREAM_BENCH_CHILD"

// childResult is what a child process reports on stdout.
type childResult struct {
	Duration time.Duration `json:"duration"`
	PeakRSS  int64         `json:"peak_rss"` // VmHWM in bytes
	CPU      time.Duration `json:"cpu"`      // user+system time in the idle window
	Idle     counts        `json:"idle"`     // backend calls in the idle window
	Files    int           `json:"files"`    // files added to the replica in the idle window
	VFS      *vfsResult    `json:"vfs,omitempty"`
	Scale    *scaleResult  `json:"scale,omitempty"`
}

// runInChild re-runs this binary in mode with args and decodes its result.
func runInChild(mode string, args ...string) (childResult, error) {
	var res childResult
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("child %s: %w", mode, err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return res, fmt.Errorf("child %s output %q: %w", mode, stdout.String(), err)
	}
	return res, nil
}

func runChild(mode string, args []string) error {
	var res childResult
	var err error
	switch mode {
	case "idle":
		res, err = childIdle(args)
	case "replicate":
		res, err = childReplicate(args)
	case "restore":
		res, err = childRestore(args)
	case "vfs-point":
		res, err = childVFSPoint(args)
	case "vfs-scan":
		res, err = childVFSScan(args)
	case "scale":
		res, err = childScale(args)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return err
	}
	if res.PeakRSS, err = peakRSS(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// childIdle writes a little, waits for replication and warmup, then counts
// what the library does during a window without writes. Args: dir, warmup,
// window.
func childIdle(args []string) (res childResult, err error) {
	dir := args[0]
	warmup, _ := time.ParseDuration(args[1])
	window, _ := time.ParseDuration(args[2])
	path := filepath.Join(dir, "db")
	replicaDir := filepath.Join(dir, "replica")

	app, err := openApp(path)
	if err != nil {
		return res, err
	}
	defer func() { _ = app.Close() }()
	r, err := openReplicated(path, replicaDir, litestream.DefaultMonitorInterval, litestream.DefaultSyncInterval, true)
	if err != nil {
		return res, err
	}
	defer func() { _ = r.close() }()
	for range 100 {
		if err := insert(app); err != nil {
			return res, err
		}
	}
	if err := r.waitCaughtUp(30 * time.Second); err != nil {
		return res, err
	}
	time.Sleep(warmup)

	files0, err := countFiles(replicaDir)
	if err != nil {
		return res, err
	}
	calls0, cpu0 := r.client.snapshot(), cpuTime()
	time.Sleep(window)
	cpu1, calls1 := cpuTime(), r.client.snapshot()
	files1, err := countFiles(replicaDir)
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	res.Idle = counts{Last: calls1.Last, Calls: calls1.Calls - calls0.Calls, Writes: calls1.Writes - calls0.Writes, Bytes: calls1.Bytes - calls0.Bytes}
	res.Files = files1 - files0
	return res, nil
}

// childReplicate replicates an existing database from scratch: the initial
// L0 snapshot, its upload, its compaction into L1, and a snapshot-level
// file. Args: db, replica dir.
func childReplicate(args []string) (res childResult, err error) {
	start := time.Now()
	r, err := openReplicated(args[0], args[1], 0, litestream.DefaultSyncInterval, false)
	if err != nil {
		return res, err
	}
	defer func() { _ = r.close() }()
	ctx := context.Background()
	if err := r.db.Sync(ctx); err != nil {
		return res, fmt.Errorf("sync: %w", err)
	}
	if err := r.db.Replica.Sync(ctx); err != nil {
		return res, fmt.Errorf("replica sync: %w", err)
	}
	if _, err := r.db.Compact(ctx, 1); err != nil {
		return res, fmt.Errorf("compact L1: %w", err)
	}
	if _, err := r.db.Snapshot(ctx); err != nil {
		return res, fmt.Errorf("snapshot: %w", err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// childRestore restores the latest state. Args: replica dir, output path.
func childRestore(args []string) (res childResult, err error) {
	start := time.Now()
	db := litestream.NewDB(args[1] + ".unused")
	r := litestream.NewReplicaWithClient(db, file.NewReplicaClient(args[0]))
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = args[1]
	if err := r.Restore(context.Background(), opt); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// peakRSS returns VmHWM, the process's peak resident set size.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	return n, err
}
