// Replica files replaced under the same name while the DB runs, in the
// windows a first review of the replaced-file check found: a file of the
// same size, and a listing that lands during an upload batch.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// Found in review: the replaced-file check compared only sizes for a file
// this process wrote since the level was last listed. A second host on the
// same path writing the same kind of commit (same schema, same statement)
// makes an L0 file of the same size at the same TXID: the replacement was
// not seen, the DB put its next files on top of the other's, and the
// latest state no longer restored. Where the backend lists the time its
// write returned (the file backend does), times are compared too.
func TestReplica_NewestL0ReplacedBySameSizeFile(t *testing.T) {
	// The other database runs the same statements, with other random bytes.
	db, app, client := openWithNewestL0ReplacedBy(t, nil, func(other *litestream.DB, otherApp *sql.DB, _ ltx.TXID) {
		mustInsertReplicated(t, other, otherApp, 1, 3)
	})
	txid := db.Replica.Pos().TXID
	ours, err := os.ReadFile(db.LTXPath(0, txid, txid))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.ReadFile(client.LTXFilePath(0, txid, txid))
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) != len(theirs) || string(ours) == string(theirs) {
		t.Fatalf("precondition: the two files must differ in bytes, not size (%d, %d bytes)", len(ours), len(theirs))
	}
	mustInsertReplicated(t, db, app, 10, 2)
	mustRestoreEquals(t, client, MustDump(t, app), "after the newest L0 file was replaced by a file of the same size")
}

// logHook calls fn with each message logged, then logs it.
type logHook struct {
	slog.Handler
	fn func(msg string)
}

func (h logHook) Handle(ctx context.Context, r slog.Record) error {
	h.fn(r.Message)
	return h.Handler.Handle(ctx, r)
}
func (h logHook) WithAttrs(a []slog.Attr) slog.Handler {
	return logHook{h.Handler.WithAttrs(a), h.fn}
}
func (h logHook) WithGroup(n string) slog.Handler {
	return logHook{h.Handler.WithGroup(n), h.fn}
}

// failL0WriteOnce refuses the L0 write of one TXID, once.
type failL0WriteOnce struct {
	litestream.ReplicaClient
	fail atomic.Uint64 // TXID of the L0 write to fail once
}

func (c *failL0WriteOnce) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if level == 0 && c.fail.CompareAndSwap(uint64(minTXID), 0) {
		return nil, errors.New("write refused once by the test")
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

// Found in review: filesChanged forgot the position, but an upload loop
// already running put it back with setPosUnlessReset. A
// replacement of the newest L0 file that a listing finds between two
// uploads of a batch (here: a listing made while the uploader logs, right
// after its write returned) is then forgotten for good: the index has
// taken the other file in, no later listing reports it, and the DB puts
// its next files on top of the other's. An upload now sets the position
// only if no listing forgot it meanwhile.
func TestReplica_ReplacedNewestNotForgottenByRunningUpload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	wrapped := &failL0WriteOnce{ReplicaClient: client}
	db := manual(MustNewDB(t, filepath.Join(dir, "db"), wrapped))
	db.Replica.IndexRefreshInterval = -1
	var hook atomic.Pointer[func()]
	var compared atomic.Bool
	db.Logger = slog.New(logHook{slog.NewTextHandler(io.Discard, nil), func(msg string) {
		if strings.HasPrefix(msg, "local L0 files are another history than the replica's") {
			compared.Store(true)
		}
		if msg == "replica sync recovered" {
			if fn := hook.Swap(nil); fn != nil {
				(*fn)()
			}
		}
	}})
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 3)
	txid := db.Replica.Pos().TXID + 1

	otherClient := file.NewReplicaClient(filepath.Join(dir, "other-replica"))
	other := mustOpenManualDB(t, filepath.Join(dir, "other"), otherClient)
	otherApp := MustOpenApp(t, other.Path(), 4096)
	for v := 100; other.Replica.Pos().TXID < txid; v++ {
		if _, err := otherApp.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, v); err != nil {
			t.Fatal(err)
		}
		if err := other.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	theirs, err := os.ReadFile(otherClient.LTXFilePath(0, txid, txid))
	if err != nil {
		t.Fatal(err)
	}

	wrapped.fail.Store(uint64(txid))
	mustInsert(t, app, 10)
	if err := db.SyncAndWait(ctx); err == nil {
		t.Fatal("first upload of the new TXID did not fail")
	}
	var detected atomic.Bool
	fn := func() {
		// Another writer replaces the file just written, and a listing
		// (compaction's, retention's, a program's) sees it.
		if err := os.WriteFile(client.LTXFilePath(0, txid, txid), theirs, 0o600); err != nil {
			t.Error(err)
		}
		if _, err := db.Replica.MaxLTXFileInfo(context.Background(), 0); err != nil {
			t.Error(err)
		}
		detected.Store(db.Replica.Pos().IsZero())
	}
	hook.Store(&fn)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if hook.Load() != nil {
		t.Fatal("hook did not run")
	}
	t.Logf("listing forgot the position: %v; position now %s", detected.Load(), db.Replica.Pos().TXID)
	mustInsertReplicated(t, db, app, 20, 2)
	// The owed snapshot alone would make the latest state restore; the
	// DB must also have compared with the replica's file before putting
	// more of its own on top.
	if !compared.Load() {
		t.Fatal("the DB went on uploading over the replaced file without comparing it with its own")
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after the newest L0 file was replaced during an upload batch")
}

// Found by the replica hunt (seed 6451): a DB opened again over local L0
// files from an earlier run, on a replica that now holds another
// database's files at lower TXIDs (the wrong copy put back). A
// Replica.Sync made before the DB's first sync (which initializes it and
// compares the local files with the replica) took the replica's newest
// TXID for its own and uploaded the local files after it: the comparison
// waited for an init that had not run. It now uploads nothing until then.
func TestReplica_SyncBeforeFirstDBSyncDoesNotSkipComparison(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	path := filepath.Join(dir, "db")
	db := mustOpenManualDB(t, path, client)
	app := MustOpenApp(t, path, 4096)
	mustInsertReplicated(t, db, app, 1, 3)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	otherClient := file.NewReplicaClient(filepath.Join(dir, "other-replica"))
	other := mustOpenManualDB(t, filepath.Join(dir, "other"), otherClient)
	_ = MustOpenApp(t, other.Path(), 4096)
	if err := other.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if theirs, ours := other.Replica.Pos().TXID, db.Replica.Pos().TXID; theirs >= ours {
		t.Fatalf("precondition: the other replica reaches TXID %s, this one %s", theirs, ours)
	}
	if err := os.RemoveAll(client.Path()); err != nil {
		t.Fatal(err)
	} else if err := copyTree(otherClient.Path(), client.Path()); err != nil {
		t.Fatal(err)
	}

	db2 := mustOpenManualDB(t, path, client)
	if err := db2.Replica.Sync(ctx); err != nil {
		t.Logf("replica sync before the DB's first sync: %v", err)
	}
	if err := db2.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after SyncAndWait")
}
