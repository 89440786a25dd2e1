// Tests of restoring a single snapshot as a stream.
package litestream_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

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
