package litestream_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// openCountingClient tracks how many files are open for reading at once.
type openCountingClient struct {
	litestream.ReplicaClient
	mu         sync.Mutex
	open, most int
}

func (c *openCountingClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.open++
	c.most = max(c.most, c.open)
	c.mu.Unlock()
	return &countedCloser{ReadCloser: rc, c: c}, nil
}

type countedCloser struct {
	io.ReadCloser
	c    *openCountingClient
	once sync.Once
}

func (r *countedCloser) Close() error {
	r.once.Do(func() {
		r.c.mu.Lock()
		r.c.open--
		r.c.mu.Unlock()
	})
	return r.ReadCloser.Close()
}

// A backlog larger than one merge's inputs is compacted into several
// contiguous files, never holding more inputs open than the cap, and the
// level restores on its own.
func TestCompactor_Compact_Backlog(t *testing.T) {
	litestream.SetMaxCompactionInputs(t, 10)
	db, app, client := MustOpenDB(t, 4096)
	ctx := context.Background()
	for i := range 25 {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		} else if err := db.Replica.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l0 := L0TXIDs(t, client)
	if len(l0) < 21 {
		t.Fatalf("want more than two merges' worth of L0 files, got %d", len(l0))
	}

	counting := &openCountingClient{ReplicaClient: client}
	info, err := litestream.NewCompactor(counting, nil).Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	} else if info.MaxTXID != l0[len(l0)-1] {
		t.Fatalf("last L1 file ends at %s, want %s", info.MaxTXID, l0[len(l0)-1])
	}
	if counting.most > 10 {
		t.Fatalf("%d inputs open at once, cap 10", counting.most)
	} else if counting.open != 0 {
		t.Fatalf("%d inputs left open", counting.open)
	}

	l1 := levelFiles(t, client, 1)
	if want := (len(l0) + 9) / 10; len(l1) != want {
		t.Fatalf("%d L1 files, want %d", len(l1), want)
	}
	for i, f := range l1 {
		if f.MaxTXID-f.MinTXID+1 > 10 {
			t.Fatalf("L1 %s-%s merges more than 10 files", f.MinTXID, f.MaxTXID)
		} else if want := l0[0]; i == 0 && f.MinTXID != want {
			t.Fatalf("first L1 file starts at %s, want %s", f.MinTXID, want)
		} else if i > 0 && f.MinTXID != l1[i-1].MaxTXID+1 {
			t.Fatalf("L1 %s-%s does not follow %s", f.MinTXID, f.MaxTXID, l1[i-1].MaxTXID)
		}
	}

	// Restore from L1 alone.
	if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, app); got != want {
		t.Fatalf("restored from L1:\n%s\nwant:\n%s", got, want)
	}
}
