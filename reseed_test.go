// Tests of a replica that lost files the DB no longer has locally: it
// re-seeds itself, and stalls are visible.
package litestream_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"
)

// A replica behind the L0 files that retention removed locally (wiped, or
// put back from an old copy) re-seeds itself with a full snapshot at its
// next TXID, without AutoRecoverEnabled, and replication resumes.
func TestReplica_ReseedsBehindLocalRetention(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(t *testing.T, replicaDir, oldCopy string)
	}{
		{"Wiped", func(t *testing.T, replicaDir, _ string) {
			if err := os.RemoveAll(replicaDir); err != nil {
				t.Fatal(err)
			}
		}},
		{"OldCopy", func(t *testing.T, replicaDir, oldCopy string) {
			if err := os.RemoveAll(replicaDir); err != nil {
				t.Fatal(err)
			} else if err := os.Rename(oldCopy, replicaDir); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var logs syncBuffer
			db, app, client := MustOpenMonitoredDB(t, &logs, nil, func(db *litestream.DB) { db.L0Retention = time.Nanosecond })
			dir := filepath.Dir(db.Path())
			insert := func(n int) {
				t.Helper()
				for i := 0; i < n; i++ {
					if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(200))`, i); err != nil {
						t.Fatal(err)
					}
					waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
					err := db.WaitReplicated(waitCtx)
					cancel()
					if err != nil {
						t.Fatalf("wait replicated: %v (db pos %v, replica pos %v)\n%s", err, posOf(db.Pos()), db.Replica.Pos(), logs.String())
					}
				}
			}

			insert(3)
			oldCopy := filepath.Join(dir, "old-replica")
			if err := os.CopyFS(oldCopy, os.DirFS(client.Path())); err != nil {
				t.Fatal(err)
			}
			insert(3)
			// Compaction and L0 retention leave only the newest L0 file locally.
			if _, err := db.Compact(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if l0 := localL0(t, db); len(l0) != 1 {
				t.Fatalf("local L0 after retention: %v, want the newest only", l0)
			}

			// Lose the replica's files and restart uploads, as a new
			// process would: the next TXID the replica needs is gone.
			if err := db.Replica.Stop(false); err != nil {
				t.Fatal(err)
			}
			tt.lose(t, client.Path(), oldCopy)
			db.Replica.SetPos(ltx.Pos{})

			// The re-seed restarts TXIDs after the replica's newest; a
			// WaitReplicated begun before it, waiting for the old TXID,
			// must still return once the snapshot holding its commit is
			// uploaded.
			before, _ := db.Pos()
			waited := make(chan error, 1)
			go func() {
				if _, err := app.Exec(`INSERT INTO t (v) VALUES (-1)`); err != nil {
					waited <- err
					return
				}
				waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				waited <- db.WaitReplicated(waitCtx)
			}()
			waitFor(t, 10*time.Second, "the commit's sync", func() bool {
				pos, err := db.Pos()
				return err == nil && pos.TXID > before.TXID
			})
			if err := db.Replica.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-waited; err != nil {
				t.Fatalf("wait replicated across the re-seed: %v (db pos %v, replica pos %v)", err, posOf(db.Pos()), db.Replica.Pos())
			}
			insert(3)

			if n := strings.Count(logs.String(), "re-seeding"); n != 1 {
				t.Fatalf("%d re-seed log lines, want 1:\n%s", n, logs.String())
			}
			if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
				t.Fatalf("restored %s, want %s", got, want)
			}
		})
	}
}

// gaugeValue returns a gauge's value from reg, or -1 if it has none.
func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// A replica whose uploads keep failing shows it: SyncStatus reports the
// stall and its error, the lag gauges grow while no file moves, and the log
// has one line when syncs start failing, one when the failures become a
// stall and one at recovery, however many attempts fail in between.
func TestReplica_StallVisible(t *testing.T) {
	ctx := context.Background()
	var logs syncBuffer
	var client *testClient
	reg := prometheus.NewRegistry()
	m, err := litestream.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	db, app, _ := MustOpenMonitoredDB(t, &logs, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		client = &testClient{ReplicaClient: c}
		return client
	}, func(db *litestream.DB) { db.SetMetrics(m) })
	insert := func() {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1, randomblob(200))`); err != nil {
			t.Fatal(err)
		}
	}
	insert()
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.WaitReplicated(waitCtx); err != nil {
		t.Fatal(err)
	}
	uploaded := db.Replica.Pos().TXID

	// Lose the next local L0 file before its upload: every attempt fails.
	if err := db.Replica.Stop(false); err != nil {
		t.Fatal(err)
	}
	insert()
	waitFor(t, 10*time.Second, "the next L0 file", func() bool {
		pos, err := db.Pos()
		return err == nil && pos.TXID > uploaded
	})
	lost := db.LTXPath(0, uploaded+1, uploaded+1)
	saved, err := os.ReadFile(lost)
	if err != nil {
		t.Fatal(err)
	} else if err := os.Remove(lost); err != nil {
		t.Fatal(err)
	}
	if err := db.Replica.Start(ctx); err != nil {
		t.Fatal(err)
	}

	var status litestream.SyncStatus
	waitFor(t, 10*time.Second, "SyncStatus to report a stall", func() bool {
		status, err = db.SyncStatus(ctx)
		return err == nil && status.Stalled
	})
	if status.FailingSince.IsZero() || status.LastError == nil || !strings.Contains(status.LastError.Error(), filepath.Base(lost)) {
		t.Fatalf("stalled status %+v does not name %s", status, filepath.Base(lost))
	}
	lists := client.l0Lists.Load()
	waitFor(t, 10*time.Second, "five more failed attempts", func() bool { return client.l0Lists.Load() >= lists+5 })
	if lag := gaugeValue(t, reg, "litestream_replication_lag_txids"); lag < 1 {
		t.Fatalf("lag %v TXIDs during a stall", lag)
	} else if lag := gaugeValue(t, reg, "litestream_replication_lag_seconds"); lag <= 0 {
		t.Fatalf("lag %v seconds during a stall", lag)
	}
	for msg, want := range map[string]int{"replica sync failed": 1, "replica sync stalled": 1, "replica sync recovered": 0} {
		if n := strings.Count(logs.String(), msg); n != want {
			t.Fatalf("%d %q lines, want %d:\n%s", n, msg, want, logs.String())
		}
	}

	// Putting the file back ends the stall.
	if err := os.WriteFile(lost, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitReplicated(waitCtx); err != nil {
		t.Fatal(err)
	}
	if status, err = db.SyncStatus(ctx); err != nil {
		t.Fatal(err)
	} else if status.Stalled || !status.FailingSince.IsZero() || status.LastError != nil || !status.InSync {
		t.Fatalf("status after recovery %+v", status)
	}
	if n := strings.Count(logs.String(), "replica sync recovered"); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, logs.String())
	}
	// The gauges are set when the sync that caught up returns.
	waitFor(t, 10*time.Second, "no lag after recovery", func() bool {
		return gaugeValue(t, reg, "litestream_replication_lag_txids") == 0 && gaugeValue(t, reg, "litestream_replication_lag_seconds") == 0
	})
}
