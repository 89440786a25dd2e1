// Tests of the restore writer's O_DIRECT fallback.
package litestream

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// failingDirect stands for an O_DIRECT descriptor whose writes fail.
type failingDirect struct {
	err    error
	writes int
	closed bool
}

func (d *failingDirect) WriteAt(p []byte, off int64) (int, error) { d.writes++; return 0, d.err }
func (d *failingDirect) Close() error                             { d.closed = true; return nil }

// A file system that refuses a direct write gets that run, and every later
// one, through the ordinary descriptor; other errors are errors.
func TestRestoreWriter_DirectFallback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	run := alignedBytes(directMinRun)
	for i := range run {
		run[i] = byte(i % 251)
	}

	d := &failingDirect{err: syscall.EINVAL}
	w := &restoreWriter{f: f, direct: d}
	for _, off := range []int64{0, directMinRun} {
		if n, err := w.WriteAt(run, off); err != nil || n != len(run) {
			t.Fatalf("write at %d: n=%d err=%v", off, n, err)
		}
	}
	if d.writes != 1 || !d.closed || w.direct != nil {
		t.Fatalf("direct writes=%d closed=%v, want one refused write and the descriptor closed", d.writes, d.closed)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, append(append([]byte(nil), run...), run...)) {
		t.Fatal("file does not hold both runs")
	}

	eio := &failingDirect{err: syscall.EIO}
	w = &restoreWriter{f: f, direct: eio}
	if _, err := w.WriteAt(run, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want EIO", err)
	}
}
