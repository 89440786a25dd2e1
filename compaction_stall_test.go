// Tests that compaction and re-seeding keep going after outside trouble: a
// compaction upload that lands after its retry, a retention delete that
// half failed, a file dated ahead of the clock.
package litestream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// A compaction upload that times out but lands later, after the retry
// (which lists the level without it and merges a longer range), leaves two
// files in L1, 4-6 inside 4-9. Compaction into L2 must take the wider one,
// not wait for ever on what looks like a gap (L2 and above would never
// advance, and L1 would never be retained); retention then removes 4-6.
func TestCompactor_Compact_LateLandedUploadDoesNotStallNextLevel(t *testing.T) {
	ctx := context.Background()
	var failNext atomic.Bool
	var late []byte
	tc := &testClient{}
	tc.onWrite = func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		if level == 1 && failNext.CompareAndSwap(true, false) {
			b, err := io.ReadAll(r)
			if err != nil {
				return nil, err
			}
			late = b // the PUT is still under way at the backend
			return nil, errors.New("context deadline exceeded (the request is still in flight)")
		}
		return write(r)
	}
	db, app, client := MustOpenDBWrapped(t, 4096, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		tc.ReplicaClient = c
		return tc
	})
	insert := func() {
		t.Helper()
		for i := 0; i < 3; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1, randomblob(200))`); err != nil {
				t.Fatal(err)
			}
			if err := db.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert()
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Compact(ctx, 2); err != nil {
		t.Fatal(err)
	}
	insert()
	failNext.Store(true)
	if _, err := db.Compact(ctx, 1); err == nil {
		t.Fatal("expected the injected upload failure")
	}
	insert()
	if _, err := db.Compact(ctx, 1); err != nil { // the retry: a longer range
		t.Fatal(err)
	}
	// The first upload lands now.
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(late[:ltx.HeaderSize]); err != nil {
		t.Fatal(err)
	}
	if _, err := client.WriteLTXFile(ctx, 1, hdr.MinTXID, hdr.MaxTXID, bytes.NewReader(late)); err != nil {
		t.Fatal(err)
	}
	t.Logf("L1: %s", rangesOf(levelFiles(t, client, 1)))

	for i := 0; i < 3; i++ {
		insert()
		if _, err := db.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Compact(ctx, 2); err != nil {
			t.Errorf("compaction into L2, pass %d: %v", i, err)
		}
	}
	t.Logf("L1: %s; L2: %s", rangesOf(levelFiles(t, client, 1)), rangesOf(levelFiles(t, client, 2)))
	if err := db.EnforceRetentionByTXID(ctx, 1, 1<<40); err != nil { // L2 covers 4-6 now
		t.Fatal(err)
	}
}

// halfDeleteClient deletes the first half of a batch, then fails, as an
// object store's batch delete may (a timeout after part of the batch, or
// per-key errors), while failNext is set.
type halfDeleteClient struct {
	litestream.ReplicaClient
	failNext atomic.Bool
}

func (c *halfDeleteClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	if len(a) > 1 && c.failNext.CompareAndSwap(true, false) {
		if err := c.ReplicaClient.DeleteLTXFiles(ctx, a[:len(a)/2]); err != nil {
			return err
		}
		return errors.New("batch delete: request timed out")
	}
	return c.ReplicaClient.DeleteLTXFiles(ctx, a)
}

// A retention batch whose remote delete half failed leaves local L0 files
// behind for good. A replica later put back from an old copy must still
// re-seed itself, as in TestReplica_ReseedsBehindLocalRetention without the
// leftovers: they must not make the missing file look lost between local
// files, which would stall replication for good.
func TestReplica_Reseed_AfterHalfFailedL0RetentionDelete(t *testing.T) {
	ctx := context.Background()
	var logs syncBuffer
	hc := &halfDeleteClient{}
	db, app, client := MustOpenMonitoredDB(t, &logs, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		hc.ReplicaClient = c
		return hc
	}, func(db *litestream.DB) { db.L0Retention = time.Nanosecond })
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
				t.Fatalf("wait replicated: %v\n%s", err, logs.String())
			}
		}
	}

	insert(4)
	hc.failNext.Store(true)
	if _, err := db.Compact(ctx, 1); err != nil { // its L0 retention half-fails
		t.Fatal(err)
	}
	insert(2)
	oldCopy := filepath.Join(dir, "old-replica")
	if err := os.CopyFS(oldCopy, os.DirFS(client.Path())); err != nil {
		t.Fatal(err)
	}
	insert(3)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("local L0 after retention: %v; remote L0: %v", localL0(t, db), L0TXIDs(t, client))

	if err := db.Replica.Stop(false); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(client.Path()); err != nil {
		t.Fatal(err)
	} else if err := os.Rename(oldCopy, client.Path()); err != nil {
		t.Fatal(err)
	}
	db.Replica.SetPos(ltx.Pos{})
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Replica.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.WaitReplicated(waitCtx); err != nil {
		t.Fatalf("replica put back from an old copy never catches up: %v (db pos %v, replica pos %v)\n%s", err, posOf(db.Pos()), db.Replica.Pos(), lastLines(logs.String(), 6))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// A compacted file dated ahead of the clock (written while the clock was
// an hour fast, then corrected by NTP) must not stop compaction into its
// level until the clock reaches that date, every pass "too early", while
// L0 files pile up and the levels above and L0 retention wait on L1.
func TestStore_CompactDB_FutureDatedFileDoesNotStallLevel(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	insert := func() {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1, randomblob(100))`); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert()
	info, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The file was written while the clock was an hour fast.
	path := filepath.Join(client.Path(), "ltx", "1", ltx.FormatFilename(info.MinTXID, info.MaxTXID))
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Restarted with the clock right.
	db2 := MustNewDB(t, db.Path(), client)
	db2.MonitorInterval = 0
	db2.Replica.MonitorEnabled = false
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	store := litestream.NewStore([]*litestream.DB{db2}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 100 * time.Millisecond}})
	lvl := &litestream.CompactionLevel{Level: 1, Interval: 100 * time.Millisecond}
	for i := 0; i < 5; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1, randomblob(100))`); err != nil {
			t.Fatal(err)
		}
		if err := db2.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := store.CompactDB(ctx, db2, lvl); err != nil {
			t.Errorf("compaction pass %d with new L0 files: %v", i, err)
		}
	}
	t.Logf("L0: %v; L1: %s", L0TXIDs(t, client), rangesOf(levelFiles(t, client, 1)))
}
