// Write-rate and replication-lag benchmarks.

package main

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
)

// benchWrite compares the commit rate of an app with and without the
// library, alternating rounds so both see the same machine load.
func benchWrite(cfg config) ([]row, error) {
	dir := filepath.Join(cfg.dir, "write")
	plain, err := openApp(filepath.Join(dir, "plain", "db"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = plain.Close() }()

	path := filepath.Join(dir, "repl", "db")
	app, err := openApp(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = app.Close() }()
	r, err := openReplicated(path, filepath.Join(dir, "replica"), litestream.DefaultMonitorInterval, litestream.DefaultSyncInterval, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.close() }()
	if err := insert(app); err != nil {
		return nil, err
	}
	if err := r.waitCaughtUp(30 * time.Second); err != nil {
		return nil, fmt.Errorf("initial replication: %w", err)
	}

	// Many short alternating rounds, so load from elsewhere hits both alike.
	const rounds = 10
	var base, with int
	for range rounds {
		n, err := commitLoop(plain, cfg.writeDur/rounds)
		if err != nil {
			return nil, err
		}
		base += n
		if n, err = commitLoop(app, cfg.writeDur/rounds); err != nil {
			return nil, err
		}
		with += n
	}
	secs := cfg.writeDur.Seconds()
	ratio := float64(with) / float64(base)
	return []row{{
		figure:   "write: commit rate kept with replication",
		budget:   ">= 90%",
		baseline: fmt.Sprintf("%.0f commits/s", float64(base)/secs),
		measured: fmt.Sprintf("%.0f commits/s (%.1f%%)", float64(with)/secs, ratio*100),
		pass:     ratio >= 0.9,
	}}, nil
}

// benchLag measures commit-to-replica lag for sporadic writes at default
// and 10ms intervals, and upload batches under sustained writes.
func benchLag(cfg config) ([]row, error) {
	var rows []row
	for _, tc := range []struct {
		interval time.Duration
		samples  int
		pct      float64
		budget   time.Duration
	}{
		{litestream.DefaultMonitorInterval, cfg.lagSamples, 50, 50 * time.Millisecond},
		{10 * time.Millisecond, cfg.fastSamples, 99, 5 * time.Millisecond},
	} {
		dir := filepath.Join(cfg.dir, fmt.Sprintf("lag-%s", tc.interval))
		path := filepath.Join(dir, "db")
		app, err := openApp(path)
		if err != nil {
			return rows, err
		}
		r, err := openReplicated(path, filepath.Join(dir, "replica"), tc.interval, tc.interval, false)
		if err != nil {
			_ = app.Close()
			return rows, err
		}
		lags, err := lagSamples(r, app, tc.samples, tc.interval)
		fmt.Fprintf(os.Stderr, "   intervals %s: lag p50 %s p90 %s p99 %s max %s\n", tc.interval, ms(percentile(lags, 50)), ms(percentile(lags, 90)), ms(percentile(lags, 99)), ms(percentile(lags, 100)))
		var batches int
		if err == nil && tc.interval == litestream.DefaultSyncInterval {
			batches, err = sustainedBatches(r, app, cfg.sustained, tc.interval)
		}
		_ = r.close()
		_ = app.Close()
		if err != nil {
			return rows, err
		}
		got := percentile(lags, tc.pct)
		rows = append(rows, row{
			figure:   fmt.Sprintf("lag p%.0f, sporadic writes, intervals %s", tc.pct, tc.interval),
			budget:   "<= " + ms(tc.budget),
			baseline: fmt.Sprintf("%d samples", len(lags)),
			measured: ms(got),
			pass:     got <= tc.budget,
		})
		if tc.interval == litestream.DefaultSyncInterval {
			rows = append(rows, row{
				figure:   "uploads per SyncInterval, sustained writes",
				budget:   "<= 1",
				baseline: fmt.Sprintf("%s of writes", cfg.sustained),
				measured: fmt.Sprintf("%d", batches),
				pass:     batches <= 1,
			})
		}
	}
	return rows, nil
}

// lagSamples commits single rows separated by random gaps longer than the
// sync interval (sporadic writes) and times each until Replica.Pos passes it.
func lagSamples(r *replicated, app *sql.DB, n int, interval time.Duration) ([]time.Duration, error) {
	if err := insert(app); err != nil {
		return nil, err
	}
	lags := make([]time.Duration, 0, n)
	for range n {
		if err := r.waitCaughtUp(30 * time.Second); err != nil {
			return nil, fmt.Errorf("wait caught up: %w", err)
		}
		time.Sleep(interval + time.Duration(rand.Int64N(int64(interval))) + interval/5)
		pos, err := r.db.Pos()
		if err != nil {
			return nil, err
		}
		if err := insert(app); err != nil {
			return nil, err
		}
		start := time.Now()
		for r.db.Replica.Pos().TXID <= pos.TXID {
			if time.Since(start) > 30*time.Second {
				return nil, fmt.Errorf("commit after txid %s not replicated within 30s", pos.TXID)
			}
			time.Sleep(50 * time.Microsecond)
		}
		// The poll wakes up to a millisecond late (Go rounds short sleeps
		// in an idle process up to the netpoller's millisecond), so the
		// lag ends when the upload returned; the replica sets its
		// position right after.
		end := time.Now()
		if t, ok := r.client.uploadedAt(pos.TXID + 1); ok && t.Before(end) && t.After(start) {
			end = t
		}
		lags = append(lags, end.Sub(start))
	}
	return lags, nil
}

// sustainedBatches commits a row every millisecond for d and returns the
// most upload batches that started within any window shorter than interval.
func sustainedBatches(r *replicated, app *sql.DB, d, interval time.Duration) (int, error) {
	start := time.Now()
	for time.Since(start) < d {
		if err := insert(app); err != nil {
			return 0, err
		}
		time.Sleep(time.Millisecond)
	}
	window := interval * 95 / 100
	var uploads []time.Time
	for _, t := range r.client.batchStarts(window / 2) {
		if !t.Before(start) {
			uploads = append(uploads, t)
		}
	}
	most := 0
	for i := range uploads {
		n := 0
		for j := i; j < len(uploads) && uploads[j].Sub(uploads[i]) < window; j++ {
			n++
		}
		most = max(most, n)
	}
	return most, nil
}
