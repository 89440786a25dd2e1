// Fencing within one process: a Replica with a Leaser stops for good when
// the backend refuses its lease or its upload, and takes a retried upload
// that had landed as done.
package litestream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

// mustOpenLeasedDB opens a DB without background work whose file replica
// is leased by owner "a" for a minute; wrap (may be nil) wraps the client.
func mustOpenLeasedDB(t *testing.T, wrap func(litestream.ReplicaClient) litestream.ReplicaClient) (*litestream.DB, *file.ReplicaClient) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	MustOpenApp(t, path, 4096) // creates the database and table t

	db := litestream.NewDB(path)
	db.MonitorInterval, db.ShutdownSyncTimeout = 0, 0
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	var rc litestream.ReplicaClient = client
	if wrap != nil {
		rc = wrap(client)
	}
	db.Replica = litestream.NewReplicaWithClient(db, rc)
	db.Replica.MonitorEnabled = false
	leaser := client.NewLeaser()
	leaser.Owner, leaser.TTL = "a", time.Minute
	db.Replica.Leaser = leaser
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(context.Background()); err != nil && !errors.Is(err, litestream.ErrLeaseNotHeld) {
			t.Errorf("close db: %v", err)
		}
	})
	return db, client
}

func mustReplicaL0(t *testing.T, client litestream.ReplicaClient) []*ltx.FileInfo {
	t.Helper()
	infos, err := litestream.FindLTXFiles(context.Background(), client, 0, false, func(*ltx.FileInfo) (bool, error) { return true, nil })
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// A holder whose lease another process took (here: a host whose clock ran
// ahead rewrote the record before the TTL ended) is refused by the backend
// at its next batch: nothing is uploaded or deleted, SyncStatus and
// WaitReplicated report it.
func TestReplica_Lease_BackendRefusesStaleHolder(t *testing.T) {
	db, client := mustOpenLeasedDB(t, nil)
	app := MustOpenApp(t, db.Path(), 4096)
	ctx := context.Background()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	before := mustReplicaL0(t, client)

	// Another process takes the lease over.
	mustTakeOverFileLease(t, client.Path(), `{"generation":99,"expires_at":"2999-01-01T00:00:00Z","owner":"b"}`)

	if _, err := app.Exec(`INSERT INTO t (v) VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	err := db.SyncAndWait(ctx)
	if !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("sync after takeover: err = %v, want ErrLeaseNotHeld", err)
	}
	var lost *litestream.LeaseLostError
	if !errors.As(err, &lost) || lost.Owner != "a" {
		t.Fatalf("sync after takeover: err = %v, want *LeaseLostError of owner a", err)
	}
	if after := mustReplicaL0(t, client); len(after) != len(before) {
		t.Fatalf("replica L0 has %d files after the takeover, want %d: the fenced writer uploaded", len(after), len(before))
	}
	st, _ := db.SyncStatus(ctx)
	if !errors.Is(st.LeaseLost, litestream.ErrLeaseNotHeld) {
		t.Fatalf("SyncStatus.LeaseLost = %v, want ErrLeaseNotHeld", st.LeaseLost)
	}
	// Deletes (retention, compaction) are refused too.
	if err := db.EnforceRetentionByTXID(ctx, 0, ltx.TXID(before[len(before)-1].MaxTXID)); err != nil && !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("retention after takeover: %v", err)
	}
	if after := mustReplicaL0(t, client); len(after) != len(before) {
		t.Fatalf("replica L0 has %d files after retention, want %d: the fenced writer deleted", len(after), len(before))
	}
	if _, err := db.Compact(ctx, 1); !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("compaction after takeover: err = %v, want ErrLeaseNotHeld", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.WaitReplicated(waitCtx); !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("WaitReplicated after takeover: err = %v, want ErrLeaseNotHeld", err)
	}
}

// An L0 file another writer stored under the next TXID is never replaced:
// the create-only upload is refused and the replica stops.
func TestReplica_Lease_CreateOnlyUploadFences(t *testing.T) {
	db, client := mustOpenLeasedDB(t, nil)
	app := MustOpenApp(t, db.Path(), 4096)
	ctx := context.Background()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	next := pos.TXID + 1
	theirs := clienttest.MustLTX(t, 4096, next, next, 1, time.Now())
	if _, err := client.WriteLTXFile(ctx, 0, next, next, bytes.NewReader(theirs)); err != nil {
		t.Fatal(err)
	}

	if _, err := app.Exec(`INSERT INTO t (v) VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("upload over another writer's L0 %s: err = %v, want ErrLeaseNotHeld", next, err)
	}
	got, err := os.ReadFile(client.LTXFilePath(0, next, next))
	if err != nil {
		t.Fatal(err)
	} else if string(got) != string(theirs) {
		t.Fatalf("the other writer's L0 %s was replaced", next)
	}
}

// An upload that landed but whose response was lost is retried; the retry
// finds its own bytes under the name and succeeds, without fencing.
func TestReplica_Lease_RetryOfLandedUpload(t *testing.T) {
	var fc *faultclient.Client
	db, client := mustOpenLeasedDB(t, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		fc = faultclient.New(c, faultclient.Config{Seed: 1, LostAckRate: 1})
		fc.SetEnabled(false)
		return fc
	})
	app := MustOpenApp(t, db.Path(), 4096)
	ctx := context.Background()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fc.SetEnabled(true)
	if err := db.Replica.Sync(ctx); !errors.Is(err, faultclient.ErrInjected) {
		t.Fatalf("first upload: err = %v, want the injected lost ack", err)
	}
	fc.SetEnabled(false)
	if err := db.Replica.Sync(ctx); err != nil {
		t.Fatalf("retry of an upload that landed: %v", err)
	}
	pos, _ := db.Pos()
	if l0 := mustReplicaL0(t, client); len(l0) == 0 || l0[len(l0)-1].MaxTXID != pos.TXID {
		t.Fatalf("replica L0 = %v, want it to end at %s", l0, pos.TXID)
	}
	if st, _ := db.SyncStatus(ctx); st.LeaseLost != nil {
		t.Fatalf("fenced by its own retry: %v", st.LeaseLost)
	}
}

// mustTakeOverFileLease writes the next version of a file replica's lease
// record, as another process taking the lease over would.
func mustTakeOverFileLease(t *testing.T, replicaPath, record string) {
	t.Helper()
	dir := filepath.Join(replicaPath, file.LeaseDir)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("read lease versions: %v (%d entries)", err, len(entries))
	}
	var n uint64
	if _, err := fmt.Sscanf(entries[len(entries)-1].Name(), "%016x.json", &n); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%016x.json", n+1)), []byte(record), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Open fails fast with *LeaseExistsError while another process holds the
// lease; in LeaseWait mode it opens, uploads nothing, and Close returns at
// once instead of waiting for the lease.
func TestReplica_Lease_HeldElsewhere(t *testing.T) {
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	other := file.NewLeaser(replicaPath)
	other.Owner = "other"
	if _, err := other.AcquireLease(context.Background()); err != nil {
		t.Fatal(err)
	}

	for _, wait := range []bool{false, true} {
		path := filepath.Join(dir, fmt.Sprintf("db-%v", wait))
		app := MustOpenApp(t, path, 4096)
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		db := litestream.NewDB(path)
		db.MonitorInterval, db.ShutdownSyncTimeout = 10*time.Millisecond, time.Minute
		client := file.NewReplicaClient(replicaPath)
		db.Replica = litestream.NewReplicaWithClient(db, client)
		db.Replica.SyncInterval = 10 * time.Millisecond
		db.Replica.Leaser, db.Replica.LeaseWait = client.NewLeaser(), wait

		err := db.Open()
		var exists *litestream.LeaseExistsError
		if !wait {
			if !errors.As(err, &exists) || exists.Owner != "other" {
				t.Fatalf("fail-fast open: err = %v, want *LeaseExistsError naming other", err)
			}
			continue
		} else if err != nil {
			t.Fatalf("open in wait mode: %v", err)
		}
		if err := db.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := db.Close(context.Background()); !errors.Is(err, litestream.ErrLeaseNotHeld) {
			t.Fatalf("close while waiting: err = %v, want ErrLeaseNotHeld", err)
		} else if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("close while waiting took %s: it waited for the lease", took)
		}
		if l0 := mustReplicaL0(t, client); len(l0) != 0 {
			t.Fatalf("a waiting replica uploaded %d L0 files", len(l0))
		}
	}
}

// A short program in LeaseWait mode with the lease free: it opens, commits
// and closes within its first MonitorInterval. Close asks for the lease
// once and uploads what was committed, then gives the lease back.
func TestReplica_Lease_WaitModeCloseBeforeFirstTick(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	replicaPath := filepath.Join(dir, "replica")
	client := file.NewReplicaClient(replicaPath)
	db := litestream.NewDB(path)
	db.MonitorInterval = time.Hour // Close comes before the first tick
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.Leaser, db.Replica.LeaseWait = client.NewLeaser(), true
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatalf("Close with the lease free: %v", err)
	}
	if l0 := mustReplicaL0(t, client); len(l0) == 0 {
		t.Fatal("the committed row was not uploaded although the lease was free")
	}
	// The lease was given back: another process takes it at once.
	other := file.NewLeaser(replicaPath)
	other.Owner = "other"
	if _, err := other.AcquireLease(ctx); err != nil {
		t.Fatalf("lease after Close: %v", err)
	}
	MustVerifyReplica(t, client)
	if got := countRows(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)); got != 1 {
		t.Fatalf("restored %d rows, want 1", got)
	}
}

// renewFailingLeaser fails every renewal while down is set: the lease
// backend is out of reach, and nobody else can take the lease either.
type renewFailingLeaser struct {
	litestream.Leaser
	down atomic.Bool
}

func (l *renewFailingLeaser) RenewLease(ctx context.Context, lease *litestream.Lease) (*litestream.Lease, error) {
	if l.down.Load() {
		return nil, errors.New("lease backend unreachable")
	}
	return l.Leaser.RenewLease(ctx, lease)
}

// A holder that could not renew for longer than its TTL (a network outage)
// asks the backend once it is back: the renewal is conditional on the
// record it last wrote, so it succeeds only if nobody took the lease
// meanwhile, and replication resumes. Its own clock does not fence it. If
// another process took the lease, the backend refuses and it is fenced.
func TestReplica_Lease_OutageLongerThanTTL(t *testing.T) {
	for _, takenOver := range []bool{false, true} {
		t.Run(fmt.Sprintf("takenOver=%v", takenOver), func(t *testing.T) {
			ctx := context.Background()
			var leaser *renewFailingLeaser
			db, client := mustOpenLeasedDB(t, nil)
			const ttl = 50 * time.Millisecond
			fl := client.NewLeaser()
			fl.Owner, fl.TTL = "a", ttl
			leaser = &renewFailingLeaser{Leaser: fl}
			if err := db.Close(ctx); err != nil {
				t.Fatal(err)
			}
			db.Replica.Leaser = leaser
			if err := db.Open(); err != nil {
				t.Fatal(err)
			}
			app := MustOpenApp(t, db.Path(), 4096)
			mustInsertReplicated(t, db, app, 1, 1)

			leaser.down.Store(true)
			mustInsert(t, app, 2)
			start := time.Now()
			for time.Since(start) < 4*ttl {
				if err := db.SyncAndWait(ctx); err == nil {
					t.Fatal("SyncAndWait returned nil while the lease could not be renewed")
				}
			}
			if takenOver {
				mustTakeOverFileLease(t, client.Path(), `{"generation":99,"expires_at":"2999-01-01T00:00:00Z","owner":"b"}`)
			}
			leaser.down.Store(false)

			err := db.SyncAndWait(ctx)
			if takenOver {
				if !errors.Is(err, litestream.ErrLeaseNotHeld) {
					t.Fatalf("sync after the outage, lease taken over: err = %v, want ErrLeaseNotHeld", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("sync after an outage longer than the TTL, nobody took the lease: %v", err)
			}
			mustRestoreEquals(t, client, MustDump(t, app), "after the outage")
		})
	}
}
