// sqlite_uri_test.go checks that database and output paths holding the
// characters a SQLite URI reads as syntax ('#', '?', '%') name those files:
// replication, restore with its integrity check, follow, v0.3.x restore.
package litestream_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/v3gen"
)

// uriName is a file name that, pasted into "file:"+path, would name another
// file: "a" with a query and fragment, or "a%41" decoded to "aA".
const uriName = "a%41#1?x=y.db"

// dirNames returns the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkOnlyNamed fails if dir holds a file not named want or one of its
// sidecars (or the DB's metadata directory): a file SQLite created at a name
// cut from a URI.
func checkOnlyNamed(t *testing.T, dir, want string) {
	t.Helper()
	for _, name := range dirNames(t, dir) {
		if !slices.Contains([]string{want, want + "-wal", want + "-shm", want + "-txid", want + "-txid.next", "." + want + "-litestream"}, name) {
			t.Fatalf("%s holds %q beside %q: a path was read as a URI (%v)", dir, name, want, dirNames(t, dir))
		}
	}
}

func TestReplica_Restore_PathWithURICharacters(t *testing.T) {
	ctx := context.Background()
	dbDir := t.TempDir()
	path := filepath.Join(dbDir, uriName)
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(t.TempDir())
	db := MustNewDB(t, path, client)
	db.MonitorInterval, db.Replica.MonitorEnabled, db.ShutdownSyncTimeout = 0, false, 0
	client.Replica = db.Replica
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	insert := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(200))`, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert(5)
	checkOnlyNamed(t, dbDir, uriName)

	// Restore with the full integrity check, which opens the output.
	outDir := t.TempDir()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(outDir, uriName)
	opt.IntegrityCheck = litestream.IntegrityCheckFull
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	checkOnlyNamed(t, outDir, uriName)
	if got, want := MustCheckRestored(t, opt.OutputPath), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}

	// Follow: the follower opens its output with SQLite on every tick.
	followDir := t.TempDir()
	out := filepath.Join(followDir, uriName)
	stop := startFollow(litestream.NewReplicaWithClient(nil, client), out)
	waitFor(t, 10*time.Second, "initial restore", func() bool {
		txid, _ := litestream.ReadTXIDFile(out)
		return txid > 0
	})
	insert(7)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	checkOnlyNamed(t, followDir, uriName)
	if got, want := countRows(t, out), countRowsApp(t, app); got != want {
		t.Fatalf("follow output has %d rows, the writer %d", got, want)
	}
}

// A v0.3.x restore opens its temporary database with SQLite to checkpoint
// each rebuilt WAL and to check the result.
func TestReplica_RestoreV3_PathWithURICharacters(t *testing.T) {
	g := v3gen.New(t, 3, 4096)
	g.NewGeneration()
	g.Write(3)
	g.Write(2)
	r, _ := MustV3Replica(t, g)

	dir := t.TempDir()
	out := filepath.Join(dir, uriName)
	if err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out}); err != nil {
		t.Fatal(err)
	}
	checkOnlyNamed(t, dir, uriName)
	if got, want := v3gen.MustState(t, out), g.Files[len(g.Files)-1].State; got != want {
		t.Fatalf("state %s, want %s", got, want)
	}
}
