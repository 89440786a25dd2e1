// Tests of automatic recovery from corrupt local LTX files.
package litestream_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// A local L0 file lost before its upload is an auto-recoverable conflict:
// with AutoRecoverEnabled the replica monitor resets local state and
// replication resumes with the TXIDs after the replica's; without it every
// attempt fails and the error is logged.
func TestReplica_AutoRecover(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("Enabled=%v", enabled), func(t *testing.T) {
			ctx := context.Background()
			var logs syncBuffer
			var client *testClient
			db, app, fc := MustOpenMonitoredDB(t, &logs, func(c litestream.ReplicaClient) litestream.ReplicaClient {
				client = &testClient{ReplicaClient: c}
				return client
			}, func(db *litestream.DB) { db.Replica.AutoRecoverEnabled = enabled })
			insert := func(n int) {
				t.Helper()
				for i := 0; i < n; i++ {
					if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(200))`, i); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitReplicated := func() {
				t.Helper()
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if err := db.WaitReplicated(wctx); err != nil {
					t.Fatalf("wait replicated: %v (db pos %v, replica pos %v)\n%s", err, posOf(db.Pos()), db.Replica.Pos(), logs.String())
				}
			}
			insert(5)
			waitReplicated()
			uploaded := db.Replica.Pos().TXID

			// Pause uploads, let the DB write more L0 files, and lose the
			// first one the replica has not seen.
			if err := db.Replica.Stop(false); err != nil {
				t.Fatal(err)
			}
			for i := ltx.TXID(1); i <= 3; i++ {
				insert(1)
				waitFor(t, 10*time.Second, "the DB monitor to write an L0 file", func() bool {
					pos, err := db.Pos()
					return err == nil && pos.TXID >= uploaded+i
				})
			}
			lost := db.LTXPath(0, uploaded+1, uploaded+1)
			saved, err := os.ReadFile(lost)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(lost); err != nil {
				t.Fatal(err)
			}
			if err := db.Replica.Start(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the failed upload to be logged", func() bool {
				return strings.Contains(logs.String(), "replica sync failed") && strings.Contains(logs.String(), filepath.Base(lost))
			})

			if enabled {
				waitFor(t, 10*time.Second, "local state reset", func() bool {
					return strings.Contains(logs.String(), "resetting local state")
				})
				insert(3)
				waitReplicated()
				if got := db.Replica.Pos().TXID; got <= uploaded {
					t.Fatalf("replica at txid %s after recovery, want past %s", got, uploaded)
				}
			} else {
				// Several more attempts fail; the replica does not move and
				// local state is kept.
				lists := client.l0Lists.Load()
				waitFor(t, 10*time.Second, "three more upload attempts", func() bool {
					return client.l0Lists.Load() >= lists+3
				})
				if l0 := L0TXIDs(t, fc); l0[len(l0)-1] != uploaded {
					t.Fatalf("replica L0 reached %s with a local file missing, want %s", l0[len(l0)-1], uploaded)
				}
				if strings.Contains(logs.String(), "resetting local state") {
					t.Fatalf("local state reset with AutoRecoverEnabled=false:\n%s", logs.String())
				}
				// Putting the file back lets uploads continue.
				if err := os.WriteFile(lost, saved, 0o644); err != nil {
					t.Fatal(err)
				}
				waitReplicated()
			}
			if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
				t.Fatalf("restored %s, want %s", got, want)
			}
		})
	}
}

// posOf drops the error, for failure messages.
func posOf(p ltx.Pos, _ error) ltx.Pos { return p }

// ResetLocalState waits for a sync that is writing an L0 file instead of
// removing the directory under it.
func TestDB_ResetLocalState_DuringSync(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (2)`); err != nil {
		t.Fatal(err)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	litestream.SetOpenFileHook(t, func(name string, flag int, perm os.FileMode) (*os.File, error) {
		once.Do(func() { close(entered); <-release })
		return os.OpenFile(name, flag, perm)
	})
	syncErr, resetErr := make(chan error, 1), make(chan error, 1)
	go func() { syncErr <- db.Sync(ctx) }()
	<-entered
	go func() { resetErr <- db.ResetLocalState(ctx) }()
	// Give a reset that does not wait the chance to remove the directory.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(db.LTXDir()); os.IsNotExist(err) {
			break
		}
	}
	close(release)
	if err := <-syncErr; err != nil {
		t.Fatalf("sync during reset: %v", err)
	}
	if err := <-resetErr; err != nil {
		t.Fatalf("reset: %v", err)
	}

	if _, err := app.Exec(`INSERT INTO t (v) VALUES (3)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// Only errors about local files reset local state: a backend answering
// "not found" to an upload must not.
func TestLTXError_IsAutoRecoverable(t *testing.T) {
	for _, tt := range []struct {
		op   string
		err  error
		want bool
	}{
		{"open", os.ErrNotExist, true},
		{"decode", litestream.ErrLTXCorrupted, true},
		{"open", os.ErrPermission, false},
		{"upload", os.ErrNotExist, false},
	} {
		e := litestream.NewLTXError(tt.op, "ltx/0/x.ltx", 0, 1, 1, tt.err)
		if got := e.IsAutoRecoverable(); got != tt.want {
			t.Errorf("%s: %v: recoverable = %v, want %v", tt.op, tt.err, got, tt.want)
		}
	}
}
