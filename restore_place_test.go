// restore_place_test.go checks how a restore puts its result at the output
// path: never over a database another process created there meanwhile,
// nor removing that database's -wal.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/v3gen"
)

// createAppAt opens an application database at path and commits a row that
// stays in its -wal (no checkpoint): what a process starting up while the
// restore runs does.
func createAppAt(t *testing.T, path string) {
	t.Helper()
	a := MustOpenApp(t, path, 4096)
	if _, err := a.Exec(`PRAGMA wal_autocheckpoint = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(`INSERT INTO t (v) VALUES (-424242)`); err != nil {
		t.Fatal(err)
	}
}

// checkAppKept checks that a restore failed on the database created at out
// during it, and left that database, -wal and committed row included.
func checkAppKept(t *testing.T, out string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("restore succeeded over the database created at %s during it", out)
	} else if !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), out) || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("restore error %q: want one matching os.ErrExist, naming %s and another process", err, out)
	}
	if _, err := os.Stat(out + "-wal"); err != nil {
		t.Fatalf("the -wal of the database created at %s during the restore: %v", out, err)
	}
	check := MustOpenApp(t, out, 4096)
	var n int
	if err := check.QueryRow(`SELECT COUNT(*) FROM t WHERE v = -424242`).Scan(&n); err != nil {
		t.Fatal(err)
	} else if n != 1 {
		t.Fatalf("the row committed at %s during the restore is gone", out)
	}
	if _, err := os.Stat(out + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("restore left its temporary file: %v", err)
	}
}

// Two processes restoring on first start, or an operator restoring while
// the service starts: the application's database appears at the output path
// after the restore checked it was free. The restore must fail rather than
// delete the application's -wal and rename its result over the database.
func TestReplica_Restore_OutputCreatedDuringRestore(t *testing.T) {
	ctx := context.Background()
	_, client := replicatedTwentyRows(t)

	out := filepath.Join(t.TempDir(), "app.db")
	var once sync.Once
	ran := false
	tc := &testClient{ReplicaClient: client}
	tc.onOpen = func(level int) error {
		once.Do(func() {
			createAppAt(t, out)
			ran = true
		})
		return nil
	}

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	err := litestream.NewReplicaWithClient(nil, tc).Restore(ctx, opt)
	if !ran {
		t.Fatal("hook did not run")
	}
	checkAppKept(t, out, err)
}

// v3SnapshotHookClient runs onSnapshot before each v0.3.x snapshot is
// opened, raw as the restore opens it from clients that can.
type v3SnapshotHookClient struct {
	*file.ReplicaClient
	onSnapshot func()
}

func (c *v3SnapshotHookClient) OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	c.onSnapshot()
	return c.ReplicaClient.OpenSnapshotV3Raw(ctx, generation, index)
}

// The same for a v0.3.x backup, which places its result the same way.
func TestRestoreV3_OutputCreatedDuringRestore(t *testing.T) {
	g := v3gen.New(t, 7, 4096)
	g.NewGeneration()
	g.Write(3)
	_, root := MustV3Replica(t, g)

	out := filepath.Join(t.TempDir(), "app.db")
	var once sync.Once
	ran := false
	c := &v3SnapshotHookClient{ReplicaClient: file.NewReplicaClient(root), onSnapshot: func() {
		once.Do(func() {
			createAppAt(t, out)
			ran = true
		})
	}}
	err := litestream.NewReplicaWithClient(nil, c).RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out})
	if !ran {
		t.Fatal("hook did not run")
	}
	checkAppKept(t, out, err)
}

// Where rename cannot refuse to replace, a hard link places the file: it
// fails on an existing output and leaves both files, else leaves one name.
func TestRestore_LinkNoReplace(t *testing.T) {
	dir := t.TempDir()
	tmp, out := filepath.Join(dir, "db.tmp"), filepath.Join(dir, "db")
	if err := os.WriteFile(tmp, []byte("restored"), 0o644); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(out, []byte("app"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := litestream.LinkNoReplace(tmp, out); !errors.Is(err, os.ErrExist) {
		t.Fatalf("link over an existing output: %v, want os.ErrExist", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "app" {
		t.Fatalf("output holds %q, want the existing file's", b)
	}

	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	} else if err := litestream.LinkNoReplace(tmp, out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "restored" {
		t.Fatalf("output holds %q, want the restored file's", b)
	} else if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary name left beside the output: %v", err)
	}
}

// Two restores into one output (EnsureExists at the start of two processes
// on shared storage) share its temporary file: the second must be refused
// while the first writes it, not truncate it, and the first's result must
// be whole. A temporary file a killed restore left is reused.
func TestReplica_Restore_SecondRestoreIntoSameOutput(t *testing.T) {
	ctx := context.Background()
	app, client := replicatedTwentyRows(t)
	want := MustDump(t, app)

	out := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(out+".tmp", []byte("left by a killed restore"), 0o644); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var second error
	tc := &testClient{ReplicaClient: client}
	tc.onOpen = func(level int) error {
		once.Do(func() {
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = out
			second = litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt)
		})
		return nil
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	if err := litestream.NewReplicaWithClient(nil, tc).Restore(ctx, opt); err != nil {
		t.Fatalf("first restore: %v", err)
	}
	if second == nil || !strings.Contains(second.Error(), "another restore into the same output is running") {
		t.Fatalf("second restore into the same output while the first ran: %v", second)
	}
	if got := MustCheckRestored(t, out); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
	if _, err := os.Stat(out + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
}

// v3WALHookClient runs onWAL before each v0.3.x WAL segment is opened,
// raw as the restore opens it: the snapshot is then in the temporary file.
type v3WALHookClient struct {
	*file.ReplicaClient
	onWAL func()
}

func (c *v3WALHookClient) OpenWALSegmentV3Raw(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	c.onWAL()
	return c.ReplicaClient.OpenWALSegmentV3Raw(ctx, generation, index, offset)
}

// A v0.3.x restore shares <output>.tmp with any other restore into the same
// output, v0.3.x or LTX: whichever comes second must be refused, naming the
// file, without removing or overwriting the first's temporary files, and
// the first must place its own database whole.
func TestReplica_RestoreV3_SecondRestoreIntoSameOutput(t *testing.T) {
	ctx := context.Background()
	g := v3gen.New(t, 11, 4096)
	g.NewGeneration()
	g.Write(3)
	g.Write(4)
	_, v3Root := MustV3Replica(t, g)
	v3Want := g.Files[len(g.Files)-1].State
	app, ltxClient := replicatedTwentyRows(t)
	ltxWant := MustDump(t, app)

	restoreV3 := func(c litestream.ReplicaClient, out string) error {
		return litestream.NewReplicaWithClient(nil, c).RestoreV3(ctx, litestream.RestoreOptions{OutputPath: out})
	}
	restoreLTX := func(c litestream.ReplicaClient, out string) error {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = out
		return litestream.NewReplicaWithClient(nil, c).Restore(ctx, opt)
	}
	checkRefused := func(t *testing.T, out string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), out+".tmp") || !strings.Contains(err.Error(), "another restore into the same output is running") {
			t.Fatalf("second restore into %s while the first ran: %v, want it refused naming %s.tmp", out, err, out)
		}
	}
	checkNoTemp := func(t *testing.T, out string) {
		t.Helper()
		for _, p := range []string{out + ".tmp", out + ".tmp-wal", out + ".tmp-shm"} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s left after the restore: %v", p, err)
			}
		}
	}

	// The first is a v0.3.x restore, stopped while it rebuilds its WAL.
	for name, second := range map[string]func(out string) error{
		"V3ThenV3":  func(out string) error { return restoreV3(file.NewReplicaClient(v3Root), out) },
		"V3ThenLTX": func(out string) error { return restoreLTX(ltxClient, out) },
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "app.db")
			// Left by a killed restore: reused, not a reason to refuse.
			if err := os.WriteFile(out+".tmp", []byte("left by a killed restore"), 0o644); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			var secondErr error
			ran := false
			c := &v3WALHookClient{ReplicaClient: file.NewReplicaClient(v3Root), onWAL: func() {
				once.Do(func() {
					secondErr = second(out)
					ran = true
				})
			}}
			if err := restoreV3(c, out); err != nil {
				t.Fatalf("first restore: %v", err)
			} else if !ran {
				t.Fatal("hook did not run")
			}
			checkRefused(t, out, secondErr)
			if got := v3gen.MustState(t, out); got != v3Want {
				t.Fatalf("restored state %s, want %s", got, v3Want)
			}
			checkNoTemp(t, out)
		})
	}

	// The first is an LTX restore, stopped while it applies its files.
	t.Run("LTXThenV3", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "app.db")
		var once sync.Once
		var secondErr error
		ran := false
		tc := &testClient{ReplicaClient: ltxClient}
		tc.onOpen = func(level int) error {
			once.Do(func() {
				secondErr = restoreV3(file.NewReplicaClient(v3Root), out)
				ran = true
			})
			return nil
		}
		if err := restoreLTX(tc, out); err != nil {
			t.Fatalf("first restore: %v", err)
		} else if !ran {
			t.Fatal("hook did not run")
		}
		checkRefused(t, out, secondErr)
		if got := MustCheckRestored(t, out); got != ltxWant {
			t.Fatalf("restored %s, want %s", got, ltxWant)
		}
		checkNoTemp(t, out)
	})
}

// replicatedTwentyRows replicates twenty rows to a file replica.
func replicatedTwentyRows(t *testing.T) (*sql.DB, *file.ReplicaClient) {
	t.Helper()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 20; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app, client
}
