// scale_test.go checks what each replicated database of a Store costs in
// goroutines and file descriptors, so that the per-database figures the
// README gives stay true as the code changes.

package litestream_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

func TestStore_PerDatabaseCost(t *testing.T) {
	const n = 40
	const goroutinesPerDB, descriptorsPerDB = 3, 6 // the README's figures
	dir := t.TempDir()
	dbs := make([]*litestream.DB, n)
	for i := range dbs {
		path := filepath.Join(dir, fmt.Sprintf("db%02d", i))
		app := MustOpenApp(t, path, 4096)
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if err := app.Close(); err != nil { // the application's descriptors do not count
			t.Fatal(err)
		}
		dbs[i] = MustNewDB(t, path, file.NewReplicaClient(path+"-replica"))
	}
	store := litestream.NewStore(dbs, litestream.DefaultCompactionLevels)
	sub := store.Subscribe(0)
	defer sub.Close()

	goroutines0, fds0 := runtime.NumGoroutine(), openDescriptors()
	if err := store.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(context.Background()); err != nil {
			t.Errorf("close store: %v", err)
		}
	})

	// Every database has started (its first sync opens SQLite) and uploaded.
	uploaded := map[string]bool{}
	for deadline := time.After(2 * time.Minute); len(uploaded) < n; {
		select {
		case e := <-sub.C:
			if e.Type == litestream.EventUploaded {
				uploaded[e.DB] = true
			}
		case <-deadline:
			t.Fatalf("only %d of %d databases uploaded", len(uploaded), n)
		}
	}

	// The Store's own monitors are a constant; what a sync or upload
	// started briefly may still be ending, so the figure is polled.
	const storeOwn = 20
	limit := goroutinesPerDB*n + storeOwn
	got := runtime.NumGoroutine() - goroutines0
	for end := time.Now().Add(10 * time.Second); got > limit && time.Now().Before(end); got = runtime.NumGoroutine() - goroutines0 {
		time.Sleep(50 * time.Millisecond)
	}
	if got > limit {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d databases added %d goroutines, more than %d per database plus %d for the store:\n%s",
			n, got, goroutinesPerDB, storeOwn, buf[:runtime.Stack(buf, true)])
	}
	if fds0 >= 0 {
		if got, limit := openDescriptors()-fds0, descriptorsPerDB*n+storeOwn; got > limit {
			t.Fatalf("%d databases hold %d more file descriptors, more than %d per database plus %d", n, got, descriptorsPerDB, storeOwn)
		}
	}
}

// openDescriptors counts the process's open file descriptors, or -1 where
// /proc does not list them.
func openDescriptors() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}
