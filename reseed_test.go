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
	"github.com/benbjohnson/litestream/file"
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

// A replica whose L0 files are gone while L1 and the snapshot still hold
// TXIDs 1-5 (removed by an outside tool, or a partial bucket copy): a new
// host restores it and replicates. Its TXIDs must continue after 5, not
// start again at 1 under the compacted files, or the latest restore shows
// the snapshot's state instead of the new commits.
func TestReplica_NewHostOverReplicaWithoutL0(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := mustOpenManualDB(t, filepath.Join(dir, "db"), client)
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, 0)); err != nil {
		t.Fatal(err)
	}

	path2 := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	app2 := MustOpenApp(t, path2, 4096)
	db2 := mustOpenManualDB(t, path2, client)
	mustInsertReplicated(t, db2, app2, 100, 3)
	if got := L0TXIDs(t, client); len(got) == 0 || got[0] <= 5 {
		t.Errorf("new host's L0 TXIDs %v: want them after the compacted files' TXID 5", got)
	}
	mustRestoreEquals(t, client, MustDump(t, app2), "after the new host's commits")
}

// The same DB closed, its replica's L0 files then removed while L1 holds
// them, and its local L0 files retained away: opened again, it continues
// after L1's TXID instead of writing TXID 1 under it.
func TestReplica_ReopenOverReplicaWithoutL0(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := mustOpenManualDB(t, filepath.Join(dir, "db"), client)
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(db.LTXLevelDir(0)); err != nil {
		t.Fatal(err)
	}

	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 100, 3)
	if got := L0TXIDs(t, client); len(got) == 0 || got[0] <= 5 {
		t.Errorf("L0 TXIDs after reopening %v: want them after L1's TXID 5", got)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after reopening")
}

// Only the snapshot is left (L0 and L1 removed): a new host continues after
// the snapshot's TXID, and compaction into L1 then goes on from there
// without waiting on the TXIDs only the snapshot holds.
func TestReplica_NewHostOverSnapshotOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := mustOpenManualDB(t, filepath.Join(dir, "db"), client)
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, level := range []int{0, 1} {
		if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, level)); err != nil {
			t.Fatal(err)
		}
	}

	path2 := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	app2 := MustOpenApp(t, path2, 4096)
	db2 := mustOpenManualDB(t, path2, client)
	mustInsertReplicated(t, db2, app2, 100, 3)
	if _, err := db2.Compact(ctx, 1); err != nil {
		t.Fatalf("compact L1 after the snapshot: %v", err)
	}
	l1 := levelFiles(t, client, 1)
	if len(l1) != 1 || l1[0].MinTXID <= 5 {
		t.Errorf("L1 after compaction: %v, want one file starting after the snapshot's TXID 5", l1)
	}
	mustInsertReplicated(t, db2, app2, 200, 1)
	mustRestoreEquals(t, client, MustDump(t, app2), "after the new host's commits")

	// The snapshot fetched to continue its TXIDs is not kept locally once
	// newer L0 files follow it: it can be as large as the database.
	if _, err := os.Stat(db2.LTXPath(0, 1, 5)); !os.IsNotExist(err) {
		t.Errorf("local copy of the fetched snapshot 1-5 still there: %v", err)
	}
}
