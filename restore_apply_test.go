// Tests of applying restore plans.
package litestream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

const testPageSize = 4096

// testPage is the content file txid gives page pgno: half pseudo-random,
// half zero, so that LZ4 has work to do.
func testPage(txid ltx.TXID, pgno uint32) []byte {
	data := make([]byte, testPageSize)
	x := uint64(txid)<<32 | uint64(pgno) | 1
	for i := 0; i < testPageSize/2; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(data[i:], x)
	}
	return data
}

// writeTestLTX writes an LTX file of the given pages, in ascending order,
// to a file replica at dir; a snapshot covers TXIDs 1 to txid.
func writeTestLTX(t testing.TB, dir string, level int, txid ltx.TXID, commit uint32, pgnos []uint32) {
	minTXID := txid
	if level == litestream.SnapshotLevel {
		minTXID = 1
	}
	path := filepath.Join(dir, filepath.FromSlash(litestream.LTXFilePath("", level, minTXID, txid)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: testPageSize, Commit: commit, MinTXID: minTXID, MaxTXID: txid, Timestamp: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	for _, pgno := range pgnos {
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, testPage(txid, pgno)); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pageRange returns lo..hi, without the lock page.
func pageRange(lo, hi uint32) []uint32 {
	var pgnos []uint32
	for p := lo; p <= hi; p++ {
		if p != ltx.LockPgno(testPageSize) {
			pgnos = append(pgnos, p)
		}
	}
	return pgnos
}

// Later files overwrite pages, shrink the database and grow it again; the
// restore holds each page of the file that wrote it last, at the last size.
// The last file's long run, written around the page cache, covers pages
// an earlier file wrote through it.
func TestReplica_Restore_AppliesFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	writeTestLTX(t, dir, litestream.SnapshotLevel, 3, 100, pageRange(1, 100))
	writeTestLTX(t, dir, 0, 4, 100, []uint32{2, 3, 60, 61, 62, 99})
	writeTestLTX(t, dir, 1, 5, 50, []uint32{3, 7})                            // shrinks to 50 pages
	writeTestLTX(t, dir, 0, 6, 70, append([]uint32{1}, pageRange(51, 70)...)) // grows to 70
	writeTestLTX(t, dir, 0, 7, 130, pageRange(61, 130))                       // 280 KB from page 61 on

	want := make([][]byte, 131)
	for p := uint32(1); p <= 50; p++ {
		want[p] = testPage(3, p)
	}
	want[2], want[3] = testPage(4, 2), testPage(5, 3)
	want[7], want[1] = testPage(5, 7), testPage(6, 1)
	for p := uint32(51); p <= 60; p++ {
		want[p] = testPage(6, p)
	}
	for p := uint32(61); p <= 130; p++ {
		want[p] = testPage(7, p)
	}

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "db")
	if err := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(dir)).Restore(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(opt.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 130*testPageSize {
		t.Fatalf("restored %d bytes, want %d", len(got), 130*testPageSize)
	}
	for p := uint32(1); p <= 130; p++ {
		if !bytes.Equal(got[(p-1)*testPageSize:p*testPageSize], want[p]) {
			t.Fatalf("page %d differs", p)
		}
	}
}

// A damaged file in the middle of a plan, spanning many of the applier's
// batches, fails the restore naming it: damaged page data when the file
// checksum is compared at its end, a cut file while batches are still in
// flight, pages out of order with most of the file still to be read.
// Nothing is left behind and no applier goroutine outlives the restore.
func TestReplica_Restore_DamagedMiddleFile(t *testing.T) {
	const n = 1500 // about 6 MB a file, several batches
	victim := &ltx.FileInfo{Level: 0, MinTXID: 4, MaxTXID: 4}
	for name, damage := range map[string]func([]byte) []byte{
		"PageData": func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b },
		"Cut":      func(b []byte) []byte { return b[:len(b)/2] },
		"PageOrder": func(b []byte) []byte {
			off := ltx.HeaderSize
			for range n / 2 {
				off += ltx.PageHeaderSize + 4 + int(binary.BigEndian.Uint32(b[off+ltx.PageHeaderSize:]))
			}
			binary.BigEndian.PutUint32(b[off:], 1)
			return b
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTestLTX(t, dir, litestream.SnapshotLevel, 3, n, pageRange(1, n))
			writeTestLTX(t, dir, 0, 4, n, pageRange(1, n))
			writeTestLTX(t, dir, 0, 5, n, pageRange(1, 10))
			client := file.NewReplicaClient(dir)
			rewriteFile(t, client, victim, damage)

			out := t.TempDir()
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = filepath.Join(out, "db")
			err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt)
			if err == nil {
				t.Fatal("restore succeeded from a damaged file")
			}
			mustNameFile(t, err, victim)
			mustNothingLeft(t, out)
			waitFor(t, 5*time.Second, "applier goroutines to end", func() bool {
				buf := make([]byte, 1<<20)
				return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "litestream.(*pagePipeline)")
			})
		})
	}
}

// BenchmarkReplica_Restore restores a 256MB snapshot followed by 20 L0 files
// that each rewrite every 50th page. Profile with -cpuprofile.
func BenchmarkReplica_Restore(b *testing.B) {
	dir := b.TempDir()
	const n = 65536
	writeTestLTX(b, dir, litestream.SnapshotLevel, 1, n, pageRange(1, n))
	for i := uint32(0); i < 20; i++ {
		var pgnos []uint32
		for p := 1 + i; p <= n; p += 50 {
			pgnos = append(pgnos, p)
		}
		writeTestLTX(b, dir, 0, ltx.TXID(2+i), n, pgnos)
	}
	client := file.NewReplicaClient(dir)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(b.TempDir(), "db")
		if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
			b.Fatal(err)
		}
	}
}
