// Tests of lease takeovers: whatever another holder wrote before or
// around a takeover, the new holder compares its local files with the
// replica before it takes the replica's TXIDs for its own, and a compaction
// written beside the other holder's does not stop the levels above.
package litestream_test

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// newLeasedTestDB builds, unopened, a manually synced DB at path with a
// leased file replica at replicaPath.
func newLeasedTestDB(t *testing.T, path, replicaPath, owner string, wait bool) *litestream.DB {
	t.Helper()
	db := MustNewDB(t, path, file.NewReplicaClient(replicaPath))
	db.MonitorInterval, db.ShutdownSyncTimeout = 0, 0
	db.Replica.MonitorEnabled = false
	leaser := db.Replica.Client.(*file.ReplicaClient).NewLeaser()
	leaser.Owner, leaser.TTL = owner, time.Minute
	db.Replica.Leaser, db.Replica.LeaseWait = leaser, wait
	return db
}

// A standby opened in LeaseWait mode compares its local files with the
// replica at its first local sync, while A still holds the lease and goes
// on writing. When A closes and the standby takes the lease, it must
// compare again before it uploads from the replica's newest TXID: else its
// L0 files past A's newest go on top of A's history, and its commits at
// TXIDs A already used are skipped as if replicated.
func TestReplica_Lease_WaitStandbyComparesAgainAfterTakeover(t *testing.T) {
	ctx := context.Background()
	client, a, appA, b, appB := holderAndStandby(t)

	// A goes on replicating, then closes and releases the lease.
	mustInsertReplicated(t, a, appA, 3, 3)
	wantA := MustDump(t, appA)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	posA := levelFiles(t, client, 0)
	t.Logf("A's replica ends at L0 %s", posA[len(posA)-1].MaxTXID)

	// B commits more and uploads: it takes the free lease now.
	for i := 1; i <= 6; i++ {
		mustInsert(t, appB, 200+i)
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pb, _ := b.Pos()
	t.Logf("B's local position %s", pb.TXID)
	if err := b.SyncAndWait(ctx); err != nil {
		t.Fatalf("B's upload after taking the lease: %v", err)
	}
	wantB := MustDump(t, appB)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatalf("restore latest: %v", err)
	}
	if got := MustCheckRestored(t, opt.OutputPath); got != wantA && got != wantB {
		t.Fatalf("restore latest: %s, neither A's state %s nor B's %s", got, wantA, wantB)
	} else if got != wantB {
		t.Fatalf("restore latest: A's state %s; B's commits (%s), acknowledged by SyncAndWait, are not on the replica", got, wantB)
	}
}

// A compaction in a LeaseWait standby reads the replica while another
// process holds the lease, then waits for the lease inside its write. When
// the holder closes, the write lands with what was read before: an L1 file
// inside the range of one the holder compacted meanwhile. Compaction into
// L2 must take the wider file, not wait for ever on what looks like a gap.
func TestReplica_Lease_WaitStandbyCompactionReadBeforeLease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	client := file.NewReplicaClient(replicaPath)

	pathA := filepath.Join(dir, "a.db")
	appA := MustOpenApp(t, pathA, 4096)
	a := newLeasedTestDB(t, pathA, replicaPath, "a", false)
	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, a, appA, 0, 3)
	if _, err := a.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, a, appA, 3, 3)

	// B: a standby with no local database yet; its compaction runs.
	b := newLeasedTestDB(t, filepath.Join(dir, "b.db"), replicaPath, "b", true)
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	waiting := signalLeaseWait(b)
	done := make(chan error, 1)
	go func() { _, err := b.Compact(ctx, 1); done <- err }()
	waitSignal(t, waiting, "the compaction to read its inputs and wait for the lease")

	// A goes on, compacts, closes.
	mustInsertReplicated(t, a, appA, 6, 3)
	if _, err := a.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	wantA := MustDump(t, appA)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("B's compaction: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("B's compaction still waits")
	}
	for _, info := range levelFiles(t, client, 1) {
		t.Logf("L1 %s-%s", info.MinTXID, info.MaxTXID)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mustRestoreEquals(t, client, wantA, "after the standby's compaction")

	// A restarts and goes on: compaction into L2 must get past the overlap.
	a2 := newLeasedTestDB(t, pathA, replicaPath, "a2", false)
	if err := a2.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, a2, appA, 9, 3)
	if _, err := a2.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.Compact(ctx, 2); err != nil {
		t.Errorf("compaction into L2 after the overlap: %v", err)
	}
	for _, info := range levelFiles(t, client, 1) {
		t.Logf("L1 %s-%s", info.MinTXID, info.MaxTXID)
	}
	mustRestoreEquals(t, client, MustDump(t, appA), "after A's restart")
	// L2 now covers the narrower file: L1 retention removes it.
	if err := a2.EnforceRetentionByTXID(ctx, 1, 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := a2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	MustVerifyReplica(t, client)
}

// A snapshot in a LeaseWait standby reads its local database at its local
// TXID, then waits for the lease. Once the holder closes it takes the
// lease and finds the replica past that TXID with the holder's history: it
// must not write its own database's snapshot under the holder's TXID.
func TestReplica_Lease_WaitStandbySnapshotUnderHoldersTXID(t *testing.T) {
	ctx := context.Background()
	client, a, appA, b, _ := holderAndStandby(t)
	waiting := signalLeaseWait(b)
	done := make(chan error, 1)
	go func() { _, err := b.Snapshot(ctx); done <- err }()
	waitSignal(t, waiting, "the snapshot to read its position and wait for the lease")

	statesA := map[ltx.TXID]string{}
	for v := 3; v < 7; v++ {
		mustInsertReplicated(t, a, appA, v, 1)
		pos, _ := a.Pos()
		statesA[pos.TXID] = MustDump(t, appA)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("B's snapshot: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("B's snapshot still waits")
	}
	for _, info := range levelFiles(t, client, litestream.SnapshotLevel) {
		t.Logf("L9 %s-%s", info.MinTXID, info.MaxTXID)
	}
	for _, info := range levelFiles(t, client, 0) {
		t.Logf("L0 %s-%s", info.MinTXID, info.MaxTXID)
	}
	_ = b.Close(ctx)
	for txid, want := range statesA {
		path := MustRestore(t, litestream.NewReplicaWithClient(nil, client), txid)
		if got := MustCheckRestored(t, path); got != want {
			t.Errorf("restore TXID %s: %s, want A's state there %s", txid, got, want)
		}
	}
}

type gatedClient struct {
	litestream.ReplicaClient
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (c *gatedClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if level == 0 && minTXID == 2 {
		c.once.Do(func() { close(c.entered); <-c.gate })
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

// Host A is paused between its batch's lease check and its L0 upload, past
// its TTL. B takes the lease over in the documented way (LeaseWait,
// EnsureExists, Open), restores and commits. A wakes and its upload lands
// before B's first upload. B lists the replica's position and finds A's
// file: it must compare it with its own file of that TXID, which the
// create-only upload never sees, rather than put its next TXID on top.
func TestReplica_Lease_PausedOldUploadLandsAfterTakeover(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")

	pathA := filepath.Join(dir, "a.db")
	appA := MustOpenApp(t, pathA, 4096)
	gc := &gatedClient{ReplicaClient: file.NewReplicaClient(replicaPath), entered: make(chan struct{}), gate: make(chan struct{})}
	a := litestream.NewDB(pathA)
	a.Replica = litestream.NewReplicaWithClient(a, gc)
	a.MonitorInterval, a.ShutdownSyncTimeout = 0, 0
	a.Replica.MonitorEnabled = false
	la := file.NewLeaser(replicaPath)
	la.Owner, la.TTL = "a", 300*time.Millisecond
	a.Replica.Leaser, a.Replica.LeaseRenewInterval = la, time.Hour
	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close(ctx) }()
	mustInsertReplicated(t, a, appA, 0, 1) // TXID 1
	mustInsert(t, appA, 1)                 // TXID 2, its upload paused
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Replica.Sync(ctx) }()
	<-gc.entered // A checked its lease and is "paused" before the upload

	pathB := filepath.Join(dir, "b.db")
	b := newLeasedTestDB(t, pathB, replicaPath, "b", true)
	if err := b.EnsureExists(ctx); err != nil { // waits out A's TTL
		t.Fatal(err)
	}
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	appB := MustOpenApp(t, pathB, 4096)
	mustInsert(t, appB, 100)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	close(gc.gate) // A wakes; its upload lands
	t.Logf("A's paused upload: %v", <-done)

	mustInsert(t, appB, 101)
	if err := b.SyncAndWait(ctx); err != nil {
		t.Errorf("B, the lease holder, after the old holder's late upload: %v", err)
	}
	st, _ := b.SyncStatus(ctx)
	t.Logf("B lease lost: %v", st.LeaseLost)
	wantB := MustDump(t, appB)
	_ = b.Close(ctx)
	for _, info := range levelFiles(t, gc.ReplicaClient, 0) {
		t.Logf("L0 %s-%s", info.MinTXID, info.MaxTXID)
	}
	mustRestoreEquals(t, gc.ReplicaClient, wantB, "after the old holder's late upload")
}

// holderAndStandby opens A, holding the lease of a file replica with three
// rows replicated, and B, a standby in LeaseWait mode with its own local
// database, whose first sync captured one commit locally and compared its
// files with the replica as A left it so far.
func holderAndStandby(t *testing.T) (client *file.ReplicaClient, a *litestream.DB, appA *sql.DB, b *litestream.DB, appB *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	client = file.NewReplicaClient(replicaPath)
	pathA := filepath.Join(dir, "a.db")
	appA = MustOpenApp(t, pathA, 4096)
	a = newLeasedTestDB(t, pathA, replicaPath, "a", false)
	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, a, appA, 0, 3)

	pathB := filepath.Join(dir, "b.db")
	appB = MustOpenApp(t, pathB, 4096)
	b = newLeasedTestDB(t, pathB, replicaPath, "b", true)
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, appB, 200)
	if err := b.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return client, a, appA, b, appB
}

// leaseWaitSignal is a Leaser that signals each attempt to acquire the
// lease: a LeaseWait DB's write that tries means its reads are done.
type leaseWaitSignal struct {
	litestream.Leaser
	tried chan struct{}
}

func (l *leaseWaitSignal) AcquireLease(ctx context.Context) (*litestream.Lease, error) {
	select {
	case l.tried <- struct{}{}:
	default:
	}
	return l.Leaser.AcquireLease(ctx)
}

// signalLeaseWait wraps db's Leaser (db idle, not holding the lease) and
// returns a channel that receives when the DB next tries to acquire it.
func signalLeaseWait(db *litestream.DB) <-chan struct{} {
	l := &leaseWaitSignal{Leaser: db.Replica.Leaser, tried: make(chan struct{}, 1)}
	db.Replica.Leaser = l
	return l.tried
}

// waitSignal waits up to 10 s for c.
func waitSignal(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
