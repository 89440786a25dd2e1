package litestream_test

import (
	"context"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/faultclient"
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
	m := map[string]any{"msg": r.Message, "level_name": r.Level.String()}
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

	db := litestream.NewDB(filepath.Join(dir, "db"))
	db.MonitorInterval = 20 * time.Millisecond
	db.MinCheckpointPageN = 32
	db.CheckpointInterval = 200 * time.Millisecond
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
	db.Replica = litestream.NewReplicaWithClient(db, fc)
	db.Replica.SyncInterval = 20 * time.Millisecond
	inner.Replica = db.Replica
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{
		{Level: 0}, {Level: 1, Interval: 200 * time.Millisecond}, {Level: 2, Interval: 600 * time.Millisecond},
	})
	store.SnapshotInterval = time.Second
	store.SnapshotRetention = 3 * time.Second
	store.L0Retention = time.Second
	store.L0RetentionCheckInterval = 200 * time.Millisecond
	store.ShutdownSyncTimeout = 30 * time.Second
	store.ShutdownSyncInterval = 20 * time.Millisecond
	logs := newRecordHandler()
	store.Logger = slog.New(logs)
	db.SetLogger(store.Logger)

	fc.SetEnabled(false) // Store.Open gives up on a failed Init
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	fc.SetEnabled(true)
	app := MustOpenApp(t, db.Path(), 4096)
	if _, err := app.Exec(`CREATE TABLE crash (id INTEGER PRIMARY KEY, seq INTEGER, part INTEGER, v INTEGER, rolled INTEGER, pad BLOB)`); err != nil {
		t.Fatal(err)
	}

	// The crash test's logs and checks serve here too: attempts.log and
	// replicated.log in dir.
	attempts, err := os.Create(filepath.Join(dir, "attempts.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = attempts.Close() }()
	replicated, err := os.Create(filepath.Join(dir, "replicated.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = replicated.Close() }()

	var pending []int
	confirm := func() {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := db.WaitReplicated(wctx); err != nil {
			t.Fatalf("wait replicated: %v", err)
		}
		for _, seq := range pending {
			if _, err := replicated.WriteString(strconv.Itoa(seq) + "\n"); err != nil {
				t.Fatal(err)
			}
		}
		pending = pending[:0]
	}
	never := func(string) bool { return false }
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	var seq int
	for seq = 1; time.Now().Before(deadline); seq++ {
		if _, err := attempts.WriteString(strconv.Itoa(seq) + "\n"); err != nil {
			t.Fatal(err)
		}
		if err := crashTxn(app, seq, rng, never, nil); err != nil {
			t.Fatal(err)
		}
		if !crashTxnRolledBack(seq) {
			pending = append(pending, seq)
		}
		if rng.Intn(4) == 0 {
			confirm()
		}
	}
	confirm()
	if err := store.Close(ctx); err != nil {
		t.Fatalf("close with faults: %v", err)
	}
	counts := fc.Counts()
	fc.SetEnabled(false)

	// Through the plain client: nothing lost, nothing extra, and after the
	// close the replica equals the source.
	MustCheckCrashReplica(t, dir, inner, 0)
	r := litestream.NewReplicaWithClient(nil, inner)
	want := MustDump(t, app)
	if got := MustCheckRestored(t, MustRestore(t, r, 0)); got != want {
		t.Fatalf("replica holds %s, source %s", got, want)
	}
	for _, kind := range []faultclient.Kind{faultclient.KindError, faultclient.KindTimeout, faultclient.KindSlow, faultclient.KindShortRead, faultclient.KindHalfWrite, faultclient.KindLostAck} {
		if counts[kind] == 0 {
			t.Errorf("no %s fault was injected", kind)
		}
	}

	// Through the faulty client: exact, or an error and no file left.
	fc.SetEnabled(true)
	rf := litestream.NewReplicaWithClient(nil, fc)
	var ok, failed int
	for i := 0; i < 20; i++ {
		outDir := t.TempDir()
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(outDir, "db")
		if err := rf.Restore(ctx, opt); err != nil {
			if entries, _ := os.ReadDir(outDir); len(entries) > 0 {
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
	if ok == 0 {
		t.Error("no restore through the faulty client succeeded")
	}

	// Failures name the file, level and TXID range.
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
	t.Logf("fault run: %d transactions, faults %v, %d error logs (%d naming the file), faulty restores ok=%d failed=%d",
		seq-1, counts, len(logs.Errors()), named, ok, failed)
}
