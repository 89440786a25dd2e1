// Tests of retention.
package litestream_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

func localL0(t testing.TB, db *litestream.DB) []ltx.TXID {
	t.Helper()
	entries, err := os.ReadDir(db.LTXLevelDir(0))
	if os.IsNotExist(err) {
		return nil // before the first sync
	} else if err != nil {
		t.Fatal(err)
	}
	var a []ltx.TXID
	for _, e := range entries {
		if _, max, err := ltx.ParseFilename(e.Name()); err == nil {
			a = append(a, max)
		}
	}
	return a
}

// With short retention, compacted L0 files and expired snapshots go from
// the replica and the meta directory; the newest of each stays, and
// restores inside the window still work.
func TestStore_Retention(t *testing.T) {
	for _, remote := range []bool{true, false} {
		name := map[bool]string{true: "RetentionEnabled", false: "RetentionDisabled"}[remote]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, client, store := newStoreDB(t, t.TempDir(), litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 500 * time.Millisecond}})
			store.SnapshotInterval = time.Second
			store.SnapshotRetention = 1500 * time.Millisecond
			store.L0Retention = 300 * time.Millisecond
			store.L0RetentionCheckInterval = 100 * time.Millisecond
			store.SetL0Retention(store.L0Retention)
			store.SetRetentionEnabled(remote)
			if err := store.Open(ctx); err != nil {
				t.Fatal(err)
			}
			app := MustOpenApp(t, db.Path(), 4096)

			var firstSnapshot ltx.TXID
			write := func() {
				t.Helper()
				if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1, randomblob(100))`); err != nil {
					t.Fatal(err)
				}
				if snaps := levelFiles(t, client, 9); firstSnapshot == 0 && len(snaps) > 0 {
					firstSnapshot = snaps[0].MaxTXID
				}
			}
			// Local L0 files are cleaned in both modes; remote ones only when enabled.
			waitFor(t, 20*time.Second, "local L0 retention", func() bool {
				write()
				l := localL0(t, db)
				return len(l) > 0 && l[0] > 1
			})
			waitFor(t, 20*time.Second, "snapshot retention", func() bool {
				write()
				snaps := levelFiles(t, client, 9)
				return firstSnapshot != 0 && len(snaps) > 0 && (snaps[0].MaxTXID != firstSnapshot) == remote && len(snaps) >= 2
			})

			remoteL0 := levelFiles(t, client, 0)
			if remote && remoteL0[0].MinTXID == 1 {
				t.Fatal("remote L0 files were not deleted")
			} else if !remote && remoteL0[0].MinTXID != 1 {
				t.Fatal("remote L0 files were deleted with retention disabled")
			}

			if err := db.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
			pos, err := db.Pos()
			if err != nil {
				t.Fatal(err)
			}
			remoteL0 = levelFiles(t, client, 0)
			if last := remoteL0[len(remoteL0)-1]; last.MaxTXID != pos.TXID {
				t.Fatalf("newest remote L0 is %s, want %s", last.MaxTXID, pos.TXID)
			}
			if l := localL0(t, db); l[len(l)-1] != pos.TXID {
				t.Fatalf("newest local L0 is %v, want %s", l, pos.TXID)
			}

			want := MustDump(t, app)
			if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != want {
				t.Fatalf("restore latest: %s, want %s", got, want)
			}
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = t.TempDir() + "/db"
			opt.Timestamp = time.Now().Add(-200 * time.Millisecond)
			if err := db.Replica.Restore(ctx, opt); err != nil {
				t.Fatalf("restore inside the window: %v", err)
			}
			MustCheckRestored(t, opt.OutputPath)
			if err := store.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// EnforceRetention works (upstream panics).
func TestReplica_EnforceRetention(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	ctx := context.Background()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Replica.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if got := L0TXIDs(t, db.Replica.Client); len(got) == 0 {
		t.Fatal("retention removed the newest L0 file")
	}
}

// SetL0Retention after Open takes effect at the next check: lowering a long
// retention, or enabling a retention that was off at Open, deletes the
// covered L0 files within a few check intervals rather than on the schedule
// the old setting implied.
func TestStore_SetL0RetentionAfterOpen(t *testing.T) {
	for name, initial := range map[string]time.Duration{"Lowered": time.Hour, "EnabledAfterOpen": 0} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, client, store := newStoreDB(t, t.TempDir(), litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 100 * time.Millisecond}})
			store.L0Retention = initial
			store.L0RetentionCheckInterval = 50 * time.Millisecond
			if err := store.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = store.Close(ctx) }()
			app := MustOpenApp(t, db.Path(), 4096)
			for i := 0; i < 5; i++ {
				mustInsert(t, app, i)
				if err := db.SyncAndWait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			pos, err := db.Pos()
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "L1 to cover every L0 file", func() bool {
				l1 := levelFiles(t, client, 1)
				return len(l1) > 0 && l1[len(l1)-1].MaxTXID >= pos.TXID
			})
			// Let retention passes under the old setting see the covered files.
			covered := time.Now()
			waitFor(t, 10*time.Second, "passes under the old setting", func() bool { return time.Since(covered) > 5*store.L0RetentionCheckInterval })
			before := localL0(t, db)
			if len(before) < 5 {
				t.Fatalf("local L0 files %v before lowering retention, want all of them", before)
			}

			store.SetL0Retention(time.Millisecond)
			waitFor(t, 5*time.Second, "L0 files deleted under the new retention", func() bool {
				return len(localL0(t, db)) < len(before) && len(levelFiles(t, client, 0)) < len(before)
			})
			if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != MustDump(t, app) {
				t.Fatalf("restore after retention: %s", got)
			}
		})
	}
}
