//go:build linux

// wal_watch_linux_test.go checks the shared inotify watcher: more watched
// WALs than the kernel's default of 128 inotify instances per user, each
// woken by its own WAL only, through creation, writes and recreation.
package litestream

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWALWatcher_ManyDatabasesShareOneInstance(t *testing.T) {
	const n = 300 // over the default max_user_instances of 128
	dir := t.TempDir()
	watchers := make([]*walWatcher, n)
	for i := range watchers {
		sub := filepath.Join(dir, fmt.Sprintf("db%03d", i%50)) // six WALs per directory
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := newWALWatcher(filepath.Join(sub, fmt.Sprintf("app%03d.db-wal", i)))
		if err != nil {
			t.Fatalf("watcher %d: %v", i, err)
		}
		watchers[i] = w
		t.Cleanup(func() { _ = w.Close() })
	}
	// The process has one inotify queue, read in order: once creating a
	// sentinel's WAL has woken it, every earlier event has been handed out
	// (a removed file's own watch, for one, ends with events of its own
	// after the directory's). Each flush takes a sentinel not used before,
	// so that no wakeup of an earlier one can pass for its own.
	nextSentinel := 10
	isSentinel := func(j int) bool { return j >= 10 && j < nextSentinel }
	flush := func(what string) {
		t.Helper()
		s := nextSentinel
		nextSentinel++
		if err := os.WriteFile(watchers[s].path, []byte("created"), 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case <-watchers[s].C:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: sentinel watcher %d not woken", what, s)
		}
	}
	expectOnly := func(what string, i int) {
		t.Helper()
		select {
		case _, ok := <-watchers[i].C:
			if !ok {
				t.Fatalf("%s: watcher %d closed", what, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: watcher %d not woken", what, i)
		}
		flush(what)
		for j, w := range watchers {
			select {
			case <-w.C:
				if j != i && !isSentinel(j) {
					t.Fatalf("%s: watcher %d woken by WAL %d", what, j, i)
				}
			default:
			}
		}
	}
	for _, i := range []int{0, 129, 299} {
		path := watchers[i].path
		if err := os.WriteFile(path, []byte("created"), 0o644); err != nil {
			t.Fatal(err)
		}
		expectOnly("create", i)
		// The write is seen through the file watch made on creation (one
		// wakeup may already be pending for it).
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("frame")); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		expectOnly("write", i)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		expectOnly("remove", i)
	}

	// A closed watcher's channel is closed and its WAL no longer wakes anyone.
	_ = watchers[5].Close()
	if _, ok := <-watchers[5].C; ok {
		t.Fatal("closed watcher's channel still open")
	}
	if err := os.WriteFile(watchers[5].path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	flush("after the closed watcher's write")
	for j, w := range watchers {
		if j == 5 || isSentinel(j) {
			continue
		}
		select {
		case <-w.C:
			t.Fatalf("watcher %d woken by a closed watcher's WAL", j)
		default:
		}
	}
}
