// Tests of syncing onto a full disk.
package litestream_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// noSnapshotClient refuses snapshot (level 9) writes.
type noSnapshotClient struct{ litestream.ReplicaClient }

func (c *noSnapshotClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if level == litestream.SnapshotLevel {
		return nil, errors.New("snapshots refused by the test")
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

// While staging L0 files runs out of space, Sync fails with ErrDiskFull
// naming the file, the monitor retries with growing pauses, and once space
// returns replication catches up with nothing lost.
func TestDB_Sync_DiskFull(t *testing.T) {
	var mu sync.Mutex
	full := false
	failAt := "" // "open", "write", or alternate
	var attempts []time.Time
	litestream.SetOpenFileHook(t, func(name string, flag int, perm os.FileMode) (*os.File, error) {
		mu.Lock()
		defer mu.Unlock()
		if !full || !strings.HasSuffix(name, ".tmp") {
			return os.OpenFile(name, flag, perm)
		}
		attempts = append(attempts, time.Now())
		// Fail at open, or at the first write: the kernel's /dev/full
		// answers every write with ENOSPC.
		if failAt == "write" || (failAt == "" && len(attempts)%2 == 0) {
			if f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err == nil {
				return f, nil
			}
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	})
	setFull := func(v bool) {
		mu.Lock()
		defer mu.Unlock()
		full = v
	}
	attemptTimes := func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), attempts...)
	}

	ctx := context.Background()
	dir := t.TempDir()
	db, client, store := newStoreDB(t, dir, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	// The store's snapshot pass syncs before each snapshot. Snapshot passes
	// every 100ms that never land a snapshot keep it syncing while the disk
	// is full: those syncs must wait out the same backoff as the monitor's.
	store.SnapshotInterval = 100 * time.Millisecond
	db.Replica.Client = &noSnapshotClient{client}
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := store.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	app := MustOpenApp(t, db.Path(), 4096)
	insert := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(500))`, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(10)
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}

	setFull(true)
	insert(10)
	// The monitor keeps trying, each pause at least double the last: after
	// failure n it waits MonitorInterval * 2^(n-1) before trying again.
	waitFor(t, 30*time.Second, "5 staging attempts", func() bool { return len(attemptTimes()) >= 5 })
	a := attemptTimes()
	for n := 1; n < 5; n++ {
		if gap, min := a[n].Sub(a[n-1]), db.MonitorInterval<<(n-1); gap < min {
			t.Fatalf("attempt %d came %s after the previous, want a backoff of at least %s", n+1, gap, min)
		}
	}

	for _, op := range []string{"open", "write"} {
		mu.Lock()
		failAt = op
		mu.Unlock()
		err = db.Sync(ctx)
		var ltxErr *litestream.LTXError
		if !errors.Is(err, litestream.ErrDiskFull) || !errors.As(err, &ltxErr) {
			t.Fatalf("sync on a full disk, failing at %s: err = %v, want ErrDiskFull in an LTXError", op, err)
		}
		if want := before.TXID + 1; ltxErr.Op != "stage-"+op || ltxErr.Level != 0 || ltxErr.MinTXID != uint64(want) || !strings.HasSuffix(ltxErr.Path, ".tmp") {
			t.Fatalf("error is %s of L%d %d-%d %s, want stage-%s of L0 TXID %d", ltxErr.Op, ltxErr.Level, ltxErr.MinTXID, ltxErr.MaxTXID, ltxErr.Path, op, want)
		}
	}
	if pos, err := db.Pos(); err != nil || pos != before {
		t.Fatalf("position moved to %v (%v) while the disk was full", pos, err)
	}

	setFull(false)
	insert(10)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := db.WaitReplicated(wctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("after space returned the replica holds %s, the source %s", got, want)
	}
	MustVerifyReplica(t, client)
	_ = filepath.WalkDir(db.MetaPath(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".tmp") {
			t.Errorf("staging left %s behind", path)
		}
		return nil
	})
}
