package litestream_test

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// writeBenchLTX writes an LTX file of the given pages, half random and half
// zero so that LZ4 has work to do.
func writeBenchLTX(t testing.TB, dir string, level int, min, max ltx.TXID, commit uint32, pgnos []uint32) {
	path := filepath.Join(dir, filepath.FromSlash(litestream.LTXFilePath("", level, min, max)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ltx.NewEncoder(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096, Commit: commit, MinTXID: min, MaxTXID: max, Timestamp: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(int64(min)))
	data := make([]byte, 4096)
	for _, pgno := range pgnos {
		rnd.Read(data[:2048])
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReplica_Restore restores a 256MB snapshot followed by 20 L0 files
// that each rewrite every 50th page. Profile with -cpuprofile.
func BenchmarkReplica_Restore(b *testing.B) {
	dir := b.TempDir()
	const n = 65536
	var all []uint32
	lock := ltx.LockPgno(4096)
	for p := uint32(1); p <= n; p++ {
		if p != lock {
			all = append(all, p)
		}
	}
	writeBenchLTX(b, dir, litestream.SnapshotLevel, 1, 1, n, all)
	for i := 0; i < 20; i++ {
		var pg []uint32
		for p := uint32(1 + i); p <= n; p += 50 {
			pg = append(pg, p)
		}
		writeBenchLTX(b, dir, 0, ltx.TXID(2+i), ltx.TXID(2+i), n, pg)
	}
	client := file.NewReplicaClient(dir)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(b.TempDir(), "db")
		if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
			b.Fatal(err)
		}
	}
}
