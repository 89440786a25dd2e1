// A restore racing with compaction and L0 retention: files listed in the
// plan may be gone by the time they are opened.
package litestream_test

import (
	"context"
	"sync"
	"testing"

	"github.com/benbjohnson/litestream"
)

// The L0 files a restore planned are compacted into L1 and deleted before
// it opens them, or between its listings of L1 and L0, as a Store with short
// intervals does: the restore plans again from what the replica now holds
// instead of failing.
func TestReplica_Restore_ReplansWhenFilesVanish(t *testing.T) {
	for name, onList := range map[string]bool{"BeforeOpen": false, "BetweenListings": true} {
		t.Run(name, func(t *testing.T) { testRestoreReplans(t, onList) })
	}
}

func testRestoreReplans(t *testing.T, onList bool) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 4; i++ {
		mustInsert(t, app, i)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
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
	got := MustCheckRestored(t, MustRestore(t, &litestream.Replica{Client: vc}, 0))
	if !ran {
		t.Fatal("the restore never reached the moment the files vanish")
	} else if want := MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}
