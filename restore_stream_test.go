// Tests of restoring a single snapshot as a stream.
package litestream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// A one-file plan is decoded straight from the snapshot; its page index and
// trailer are still covered by the file checksum.
func TestReplica_Restore_SingleSnapshot(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	ctx := context.Background()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1), (2), (3)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	if pos.TXID != 1 {
		t.Fatalf("txid %s, want one snapshot file", pos.TXID)
	}
	src, err := os.ReadFile(filepath.Join(client.Path(), "ltx", "0", "0000000000000001-0000000000000001.ltx"))
	if err != nil {
		t.Fatal(err)
	}

	// restore copies the snapshot, changed by corrupt, to a new replica and
	// restores from it.
	restore := func(t *testing.T, corrupt func([]byte) []byte) (string, error) {
		dir := t.TempDir()
		b := corrupt(append([]byte(nil), src...))
		if err := os.MkdirAll(filepath.Join(dir, "replica", "ltx", "0"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "replica", "ltx", "0", "0000000000000001-0000000000000001.ltx"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := litestream.NewReplicaWithClient(litestream.NewDB(filepath.Join(dir, "unused")), file.NewReplicaClient(filepath.Join(dir, "replica")))
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(dir, "db")
		return opt.OutputPath, r.Restore(ctx, opt)
	}

	t.Run("OK", func(t *testing.T) {
		path, err := restore(t, func(b []byte) []byte { return b })
		if err != nil {
			t.Fatal(err)
		}
		if got, want := MustCheckRestored(t, path), MustDump(t, app); got != want {
			t.Fatalf("restored %s, want %s", got, want)
		}
	})
	t.Run("ErrIndexCorrupt", func(t *testing.T) {
		_, err := restore(t, flipByte(-ltx.TrailerSize-1))
		if !errors.Is(err, litestream.ErrLTXCorrupted) {
			t.Fatalf("err = %v, want ErrLTXCorrupted", err)
		}
	})
	// The damages that crashed ltx's decoder or made it allocate 4 GiB are
	// errors on this path too.
	t.Run("PageFrameSize", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := restore(t, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[ltx.HeaderSize+ltx.PageHeaderSize:], 0xfffffff0)
			return b
		})
		runtime.ReadMemStats(&after)
		if !errors.Is(err, litestream.ErrLTXCorrupted) || !strings.Contains(err.Error(), "compressed bytes") {
			t.Fatalf("err = %v, want a page frame size error", err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<28 {
			t.Fatalf("allocated %d MiB reading a damaged file", n>>20)
		}
	})
	t.Run("TruncatedAfterPages", func(t *testing.T) {
		_, err := restore(t, truncateAfterPages)
		if !errors.Is(err, litestream.ErrLTXCorrupted) {
			t.Fatalf("err = %v, want ErrLTXCorrupted", err)
		}
	})
	t.Run("ErrPageCorrupt", func(t *testing.T) {
		_, err := restore(t, flipByte(ltx.HeaderSize+ltx.PageHeaderSize+8))
		if !errors.Is(err, litestream.ErrLTXCorrupted) {
			t.Fatalf("err = %v, want ErrLTXCorrupted", err)
		}
	})
}

// flipByte returns a damage that inverts the byte at off, counted from the
// end when negative.
func flipByte(off int) func([]byte) []byte {
	return func(b []byte) []byte {
		i := off
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0xff
		return b
	}
}

// endFailingClient hands out streams that fail, with an error other than
// EOF, once all of the file has been read, and refuses to open a file at
// its end, as s3, gs and oss answer an empty range (416).
type endFailingClient struct {
	litestream.ReplicaClient
}

func (c endFailingClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return nil, err
	} else if len(b) == 0 {
		return nil, errors.New("416 requested range not satisfiable")
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b), iotest.ErrReader(errors.New("connection reset")))), nil
}

// A stream that fails right after its last byte has delivered the whole
// file: the restore must not try to reopen it at its end.
func TestReplica_Restore_StreamFailsAfterLastByte(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	mustInsertReplicated(t, db, app, 1, 3)
	r := litestream.NewReplicaWithClient(nil, endFailingClient{client})
	if got, want := MustCheckRestored(t, MustRestore(t, r, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// cancelingClient cancels a context after the first read of the first file
// it opens, and like an object store's HTTP body its readers fail once the
// context they were opened with ends. It counts the opens.
type cancelingClient struct {
	litestream.ReplicaClient
	cancel context.CancelFunc
	opens  atomic.Int64
	once   sync.Once
}

func (c *cancelingClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	c.opens.Add(1)
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		return nil, err
	}
	return &cancelingReader{ReadCloser: rc, ctx: ctx, c: c}, nil
}

type cancelingReader struct {
	io.ReadCloser
	ctx context.Context
	c   *cancelingClient
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.ReadCloser.Read(p[:min(len(p), 32<<10)])
	r.c.once.Do(r.c.cancel)
	return n, err
}

// A restore whose context ends while it streams a file returns: it must not
// download the file again to diagnose the failure (that diagnosis ran on
// context.WithoutCancel, which nothing can cancel: a second full download
// of the snapshot after the caller gave up).
func TestReplica_Restore_CancelledWhileStreaming(t *testing.T) {
	dir := t.TempDir()
	writeTestLTX(t, dir, litestream.SnapshotLevel, 1, 2500, pageRange(1, 2500))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &cancelingClient{ReplicaClient: file.NewReplicaClient(dir), cancel: cancel}

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "db")
	err := litestream.NewReplicaWithClient(nil, c).Restore(ctx, opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("restore cancelled while streaming returned %v, want context.Canceled", err)
	} else if n := c.opens.Load(); n != 1 {
		t.Fatalf("the file was opened %d times: the cancelled restore downloaded it again", n)
	}
	if _, err := os.Stat(opt.OutputPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cancelled restore left its output: %v", err)
	}
}
