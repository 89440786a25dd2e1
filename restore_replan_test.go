// A restore racing with compaction and L0 retention: files listed in the
// plan may be gone by the time they are opened.
package litestream_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// The L0 files a restore planned are compacted into L1 and deleted before
// it opens them, or between its listings of L1 and L0, as a Store with short
// intervals does: the restore plans again from what the replica now holds
// instead of failing.
// A restore by timestamp plans again too: its plan may legitimately stop
// short of the newest files, but not at a hole no listed file covers.
func TestReplica_Restore_ReplansWhenFilesVanish(t *testing.T) {
	for _, tc := range []struct {
		name           string
		onList, byTime bool
	}{
		{"BeforeOpen", false, false},
		{"BetweenListings", true, false},
		{"BeforeOpenByTimestamp", false, true},
		{"BetweenListingsByTimestamp", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) { testRestoreReplans(t, tc.onList, tc.byTime) })
	}
}

func testRestoreReplans(t *testing.T, onList, byTime bool) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 4; i++ {
		mustInsert(t, app, i)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		if byTime && i == 1 {
			// L1 already holds the first commits: a plan from the old
			// listings reaches them and stops short at the hole.
			if _, err := db.Compact(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := app.Exec(`CREATE TABLE created_late (v)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}

	var once sync.Once
	ran := false
	hook := func() {
		ran = true
		if _, err := db.Compact(ctx, 1); err != nil {
			t.Errorf("compact: %v", err)
		}
		l0 := levelFiles(t, client, 0)
		if err := client.DeleteLTXFiles(ctx, l0[:len(l0)-1]); err != nil {
			t.Errorf("delete L0: %v", err)
		}
	}
	// The hook runs once, just before the first L0 listing (onList) or the
	// first open of an L0 file.
	atL0 := func(level int) error {
		if level == 0 {
			once.Do(hook)
		}
		return nil
	}
	vc := &testClient{ReplicaClient: client}
	if onList {
		vc.onList = atL0
	} else {
		vc.onOpen = atL0
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if byTime {
		opt.Timestamp = time.Now().Add(time.Millisecond) // after every commit
	}
	if err := (&litestream.Replica{Client: vc}).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	got := MustCheckRestored(t, opt.OutputPath)
	if !ran {
		t.Fatal("the restore never reached the moment the files vanish")
	} else if want := MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// Where retention has deleted the L0 files of the target time and the L1
// file that covers them is newer than the target, a restore by timestamp
// returns the nearest earlier state it can build, as upstream does, and
// does not mistake the too-new file's range for a hole.
func TestReplica_Restore_TimestampBeforeOnlyTooNewCoverage(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	commit := func(v int) {
		t.Helper()
		mustInsert(t, app, v)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	commit(1)
	commit(2)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	commit(3)
	target := time.Now().Add(time.Millisecond)
	waitFor(t, 5*time.Second, "the clock to pass the target", func() bool { return time.Now().After(target) })
	commit(4)
	if _, err := db.Compact(ctx, 1); err != nil { // its time is commit 4's
		t.Fatal(err)
	}
	commit(5)
	l0 := levelFiles(t, client, 0)
	var covered []*ltx.FileInfo // what retention deletes: the L0 files L1 covers
	l1 := levelFiles(t, client, 1)
	for _, info := range l0 {
		if info.MaxTXID <= l1[len(l1)-1].MaxTXID {
			covered = append(covered, info)
		}
	}
	if len(covered) != len(l0)-1 {
		t.Fatalf("no L0 file inside L1 %s", rangesOf(l1))
	}
	if err := client.DeleteLTXFiles(ctx, covered); err != nil {
		t.Fatal(err)
	}

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	opt.Timestamp = target
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatalf("restore to a time only a too-new file covers: %v", err)
	} else if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Fatalf("restored %s, want the state before commit 3: %s", got, want)
	}
}

// A snapshot is dated when it starts reading the database but lands on the
// replica only after the L0 files before it and its own pages are uploaded.
// A restore by a time in between that lists snapshots before it lands
// cannot use it; where retention has deleted the L0 files it holds and the
// L1 file covering them is newer than the time, the restore returns an
// earlier state (as upstream does), and a plan made after it, with the
// snapshot, reaches further. Neither is wrong: the files the restore saw
// reached no further.
func TestReplica_Restore_TimestampSnapshotLandsMidRestore(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	commit := func(v int) {
		t.Helper()
		mustInsert(t, app, v)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	commit(1)
	commit(2)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	commit(3)
	pos3, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	confirmed := confirmedRows{pos3.TXID, 3, time.Now()}

	// The snapshot at commit 3, taken off the replica until the restore
	// has listed snapshots: it lands as a slow upload would.
	snap, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := client.OpenLTXFile(ctx, snap.Level, snap.MinTXID, snap.MaxTXID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	snapData, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{snap}); err != nil {
		t.Fatal(err)
	}

	target := time.Now().Add(time.Millisecond)
	waitFor(t, 5*time.Second, "the clock to pass the target", func() bool { return time.Now().After(target) })
	commit(4)
	if _, err := db.Compact(ctx, 1); err != nil { // dated by commit 4: too new
		t.Fatal(err)
	}
	l0 := levelFiles(t, client, 0) // retention keeps the newest
	if err := client.DeleteLTXFiles(ctx, l0[:len(l0)-1]); err != nil {
		t.Fatal(err)
	}

	var once sync.Once
	vc := &testClient{ReplicaClient: client}
	vc.onList = func(level int) error {
		if level == litestream.SnapshotLevel-1 { // snapshots listed
			once.Do(func() {
				if _, err := client.WriteLTXFile(ctx, snap.Level, snap.MinTXID, snap.MaxTXID, bytes.NewReader(snapData)); err != nil {
					t.Errorf("land snapshot: %v", err)
				}
			})
		}
		return nil
	}
	before, err := snapshotNames(client)
	if err != nil {
		t.Fatal(err)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	opt.Timestamp = target
	restoreStart := time.Now()
	if err := (&litestream.Replica{Client: vc}).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	} else if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Fatalf("restored %s, want the state before commit 3, the newest the listed files reach: %s", got, want)
	}

	plan, err := litestream.CalcRestorePlan(ctx, client, 0, target, nil)
	if err != nil {
		t.Fatal(err)
	} else if first := plan[0]; first.Level != litestream.SnapshotLevel || plan[len(plan)-1].MaxTXID != snap.MaxTXID {
		t.Fatalf("a plan after the restore: %s, want the snapshot to %s", rangesOf(plan), snap.MaxTXID)
	}

	// The restore race hunt's check of a restore by time plans only with
	// the snapshots there before the restore began.
	m := &restoreModel{confirmed: []confirmedRows{confirmed}}
	if err := timeRestoreNotShort(client, before, target, restoreStart, 2, m); err != nil {
		t.Fatalf("the hunt's check, with the snapshots listed before the restore: %v", err)
	}
	after, err := snapshotNames(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := timeRestoreNotShort(client, after, target, restoreStart, 2, m); err == nil {
		t.Fatal("the hunt's check, with the snapshot that landed during the restore, took the restore for short")
	}
}
