// Tests of replication through a faulty client: errors, timeouts, short
// reads, lost acknowledgements.
package litestream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

// recordHandler keeps every log record with the attributes of its logger.
type recordHandler struct {
	mu      *sync.Mutex
	records *[]map[string]any
	attrs   []slog.Attr
}

func newRecordHandler() *recordHandler {
	return &recordHandler{mu: &sync.Mutex{}, records: &[]map[string]any{}}
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message, "level_name": r.Level.String(), "time": r.Time.Format("15:04:05.000")}
	for _, a := range h.attrs {
		m[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, m)
	return nil
}

func (h *recordHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &recordHandler{mu: h.mu, records: h.records, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *recordHandler) WithGroup(string) slog.Handler { return h }

// replicationState describes where a stalled replication stands: both
// positions and the last records logged.
func replicationState(db *litestream.DB, logs *recordHandler) string {
	var b strings.Builder
	pos, err := db.Pos()
	fmt.Fprintf(&b, "db position %s (%v), replica position %s, last sync at %s\n", pos.TXID, err, db.Replica.Pos().TXID, db.LastSuccessfulSyncAt().Format("15:04:05.000"))
	logs.mu.Lock()
	defer logs.mu.Unlock()
	records := *logs.records
	for _, m := range records[max(len(records)-30, 0):] {
		fmt.Fprintf(&b, "%v\n", m)
	}
	return b.String()
}

// Errors returns the error-level records.
func (h *recordHandler) Errors() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var a []map[string]any
	for _, m := range *h.records {
		if m["level_name"] == slog.LevelError.String() {
			a = append(a, m)
		}
	}
	return a
}

// Replication, compaction, snapshots and retention all run through a client
// that fails about a third of its calls in every way it can. Nothing that
// WaitReplicated confirmed is lost, the replica keeps its invariants and
// restores exactly, restores through the faulty client are exact or fail
// cleanly, and failures are logged with file, level and TXID.
// LITESTREAM_FAULT_SECONDS sets how long the application writes (default 12).
func TestStore_FaultyClient(t *testing.T) {
	seconds := envInt(t, "LITESTREAM_FAULT_SECONDS", 12)
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %ds", seed, seconds)
	rng := rand.New(rand.NewSource(seed))
	ctx := context.Background()
	dir := t.TempDir()

	inner := file.NewReplicaClient(filepath.Join(dir, "replica"))
	fc := faultclient.New(inner, faultclient.Config{
		Seed:          seed,
		ErrorRate:     0.2,
		TimeoutRate:   0.02,
		Timeout:       50 * time.Millisecond,
		SlowRate:      0.05,
		SlowDelay:     20 * time.Millisecond,
		ShortReadRate: 0.1,
		HalfWriteRate: 0.05,
		LostAckRate:   0.05,
	})
	fc.SetEnabled(false) // Store.Open gives up on a failed Init
	db, store, err := openCrashStore(ctx, dir, fc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db.IsOpen() { // the test failed before closing it
			_ = store.Close(ctx)
		}
	})
	fc.SetEnabled(true)
	inner.Replica = db.Replica
	store.SetShutdownSyncTimeout(time.Minute)
	store.SetShutdownSyncInterval(20 * time.Millisecond)
	logs := newRecordHandler()
	db.SetLogger(slog.New(logs))

	app := MustOpenApp(t, db.Path(), 4096)
	if _, err := app.Exec(crashSchema); err != nil {
		t.Fatal(err)
	}
	log, err := openSeqLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = log.Close() }()
	never := func(string) bool { return false }
	// Write for the time given and until every write-path fault happened.
	writeKinds := []faultclient.Kind{faultclient.KindError, faultclient.KindTimeout, faultclient.KindSlow, faultclient.KindHalfWrite, faultclient.KindLostAck}
	start := time.Now()
	for time.Since(start) < time.Duration(seconds)*time.Second || missingFaults(fc, writeKinds) != nil {
		if time.Since(start) > time.Duration(seconds)*4*time.Second {
			t.Fatalf("faults %v never injected", missingFaults(fc, writeKinds))
		}
		seq, err := log.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := crashTxn(app, seq, rng, never, nil); err != nil {
			t.Fatal(err)
		}
		log.Committed(seq)
		if rng.Intn(4) == 0 {
			if err := log.Confirm(ctx, db); err != nil {
				t.Fatalf("%v\n%s", err, replicationState(db, logs))
			}
		}
	}
	if err := log.Confirm(ctx, db); err != nil {
		t.Fatalf("%v\n%s", err, replicationState(db, logs))
	}
	if err := store.Close(ctx); err != nil {
		t.Fatalf("close with faults: %v", err)
	}
	fc.SetEnabled(false)

	// Through the plain client: nothing lost, nothing extra, and after the
	// close the replica equals the source.
	MustCheckCrashReplica(t, dir, inner, 0)
	want := MustDump(t, app)
	if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, inner), 0)); got != want {
		t.Fatalf("replica holds %s, source %s", got, want)
	}

	fc.SetEnabled(true)
	ok, failed := MustRestoreExactOrNothing(t, fc, want, 3)
	if missing := missingFaults(fc, []faultclient.Kind{faultclient.KindShortRead}); missing != nil {
		t.Errorf("faults %v never injected", missing)
	}
	counts := fc.Counts()
	named := MustLogLTXErrors(t, logs)
	t.Logf("fault run: %d transactions, faults %v, %d error logs (%d naming the file), faulty restores ok=%d failed=%d",
		log.last, counts, len(logs.Errors()), named, ok, failed)
}

// missingFaults returns the kinds fc has not injected yet.
func missingFaults(fc *faultclient.Client, kinds []faultclient.Kind) []faultclient.Kind {
	counts := fc.Counts()
	var missing []faultclient.Kind
	for _, k := range kinds {
		if counts[k] == 0 {
			missing = append(missing, k)
		}
	}
	return missing
}

// MustRestoreExactOrNothing restores latest through client until n
// restores succeeded: each one equals want, and each failure leaves no file
// behind.
func MustRestoreExactOrNothing(t testing.TB, client litestream.ReplicaClient, want string, n int) (ok, failed int) {
	t.Helper()
	r := litestream.NewReplicaWithClient(nil, client)
	for ok < n {
		if failed > 100*n {
			t.Fatalf("%d of %d restores through the faulty client succeeded", ok, ok+failed)
		}
		dir := t.TempDir()
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(dir, "db")
		if err := r.Restore(context.Background(), opt); err != nil {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Fatalf("failed restore (%v) left %s behind", err, entries[0].Name())
			}
			failed++
			continue
		}
		if got := MustCheckRestored(t, opt.OutputPath); got != want {
			t.Fatalf("restore through the faulty client returned %s, want %s", got, want)
		}
		ok++
	}
	return ok, failed
}

// MustLogLTXErrors returns how many error logs name a file by path, level,
// min_txid and max_txid, failing if none does.
func MustLogLTXErrors(t testing.TB, logs *recordHandler) int {
	t.Helper()
	var named int
	for _, m := range logs.Errors() {
		_, path := m["path"]
		_, level := m["level"]
		_, minTXID := m["min_txid"]
		_, maxTXID := m["max_txid"]
		if path && level && minTXID && maxTXID {
			named++
		}
	}
	if named == 0 {
		t.Fatalf("none of %d error logs names path, level, min_txid and max_txid", len(logs.Errors()))
	}
	return named
}

// A backlog drains through a client that fails every second upload: each
// batch gets a file through before failing, so the monitor must not back
// off (doubling per failure, it would wait minutes for 24 files).
func TestReplica_Monitor_DrainsThroughFlakyClient(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	inner := file.NewReplicaClient(filepath.Join(dir, "replica"))
	var writes atomic.Int64
	alternating := &testClient{ReplicaClient: inner, onWrite: func(_ int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		if writes.Add(1)%2 == 0 { // every second write fails
			return nil, faultclient.ErrInjected
		}
		return write(r)
	}}
	db := newVerifiedDB(t, filepath.Join(dir, "db"), alternating, inner)
	db.MonitorInterval = 0
	db.Replica.SyncInterval = 20 * time.Millisecond
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(ctx) })
	app := MustOpenApp(t, db.Path(), 4096)
	for i := 0; i < 24; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}

	db.Replica.MonitorEnabled = true
	if err := db.Replica.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the backlog to drain", func() bool {
		txids := L0TXIDs(t, inner)
		return len(txids) > 0 && txids[len(txids)-1] == pos.TXID
	})
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, inner), 0)), MustDump(t, app); got != want {
		t.Fatalf("replica holds %s, source %s", got, want)
	}
	MustVerifyReplica(t, inner)
}

// A compaction whose write landed but was reported failed is not followed
// by one that overlaps it, although the level's newest file was cached.
func TestDB_Compact_AfterLostAck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	inner := file.NewReplicaClient(filepath.Join(dir, "replica"))
	var l1Writes atomic.Int64
	lostAck := &testClient{ReplicaClient: inner, onWrite: func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		info, err := write(r)
		if err == nil && level == 1 && l1Writes.Add(1) == 2 { // stored, reported failed
			return nil, faultclient.ErrInjected
		}
		return info, err
	}}
	db := newVerifiedDB(t, filepath.Join(dir, "db"), lostAck, inner)
	db.MonitorInterval = 0
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(ctx) })
	app := MustOpenApp(t, db.Path(), 4096)
	step := func() {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}

	step()
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	step()
	if _, err := db.Compact(ctx, 1); !errors.Is(err, faultclient.ErrInjected) {
		t.Fatalf("second compaction: err = %v, want the injected lost ack", err)
	}
	step()
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	MustVerifyReplica(t, inner)
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, inner), 0)), MustDump(t, app); got != want {
		t.Fatalf("replica holds %s, source %s", got, want)
	}
}

// A run of failures grows the replica's backoff; once the backend is back,
// WaitReplicated has the replica retry at once instead of sitting out what
// is left of it (here 2 s or more against a 1 s wait).
func TestDB_WaitReplicated_CutsBackoff(t *testing.T) {
	dir := t.TempDir()
	inner := file.NewReplicaClient(filepath.Join(dir, "replica"))
	fc := faultclient.New(inner, faultclient.Config{Seed: 1, ErrorRate: 1})
	fc.SetEnabled(false)
	db := newVerifiedDB(t, filepath.Join(dir, "db"), fc, inner)
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = time.Millisecond
	db.SetLogger(discardLogger)
	app := MustOpenApp(t, db.Path(), 4096)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	ctx := context.Background()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}

	// Every call fails until the backoff after the latest failure is at
	// least 2 s (it doubles from 1 ms).
	fc.SetEnabled(true)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "twelve failed attempts", func() bool { return fc.Counts()[faultclient.KindError] >= 12 })
	fc.SetEnabled(false)

	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := db.WaitReplicated(wctx); err != nil {
		t.Fatalf("wait replicated after the backend came back: %v", err)
	}
}
