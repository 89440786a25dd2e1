// Tests that the LTX encoder and merge write the ltx package's bytes.
package litestream

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/superfly/ltx"
)

// encodeWith writes the same file through enc and through ltx.Encoder.
type pageEncoder interface {
	EncodeHeader(ltx.Header) error
	EncodePage(ltx.PageHeader, []byte) error
	SetPostApplyChecksum(ltx.Checksum)
	Close() error
}

func encodeWith(t testing.TB, enc pageEncoder, hdr ltx.Header, pgnos []uint32, pages map[uint32][]byte, chksum ltx.Checksum) {
	t.Helper()
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	for _, pgno := range pgnos {
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, pages[pgno]); err != nil {
			t.Fatal(err)
		}
	}
	enc.SetPostApplyChecksum(chksum)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}

// randomLTXInput returns a header and pages: a snapshot of every page up to
// commit, or an ascending subset; pages mix zeros, text and noise so that
// frames compress to different sizes.
func randomLTXInput(rng *rand.Rand, pageSize uint32, commit uint32, snapshot bool) (ltx.Header, []uint32, map[uint32][]byte) {
	hdr := ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: pageSize, Commit: commit, MinTXID: 1, MaxTXID: 9, Timestamp: 1700000000000}
	if !snapshot {
		hdr.MinTXID = 5
	}
	lockPgno := ltx.LockPgno(pageSize)
	pages := make(map[uint32][]byte)
	var pgnos []uint32
	for pgno := uint32(1); pgno <= commit; pgno++ {
		if !snapshot && commit > 1000 && pgno > 3 && pgno+3 < commit && (pgno+3 < lockPgno || pgno > lockPgno+3) {
			continue // a sparse file of a large database: its first and last pages, and those around the lock page
		}
		if pgno == lockPgno || (!snapshot && rng.IntN(3) != 0) {
			continue
		}
		data := make([]byte, pageSize)
		switch rng.IntN(3) {
		case 0:
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
		case 1:
			for i := range data {
				data[i] = "litestream "[i%11] + byte(pgno)
			}
		}
		pgnos = append(pgnos, pgno)
		pages[pgno] = data
	}
	if len(pgnos) == 0 {
		pgnos = append(pgnos, commit)
		pages[commit] = make([]byte, pageSize)
	}
	return hdr, pgnos, pages
}

// The encoder's files are byte for byte ltx.Encoder's, whether its index
// stays in memory or spills to disk.
func TestLTXEncoder_MatchesLTX(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name     string
		pageSize uint32
		commit   uint32
		snapshot bool
		memLimit int
		tracked  bool // checksums tracked, not NoChecksum
	}{
		{"SnapshotInMemory", 4096, 300, true, indexMemLimit, false},
		{"SnapshotSpilled", 4096, 300, true, 64, false},
		{"SnapshotSpilledTiny", 512, 2000, true, 1, false},
		{"AroundLockPage", 512, (1<<30)/512 + 40, false, 4096, false},
		{"ChangedPagesSpilled", 1024, 3000, false, 100, false},
		{"OnePage", 4096, 1, true, 64, false},
		{"TrackedSnapshot", 4096, 50, true, 64, true},
		{"TrackedChanges", 4096, 50, false, 64, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr, pgnos, pages := randomLTXInput(rng, tc.pageSize, tc.commit, tc.snapshot)
			var chksum ltx.Checksum
			if tc.tracked {
				hdr.Flags = 0
				if !tc.snapshot {
					hdr.PreApplyChecksum = ltx.ChecksumFlag | ltx.Checksum(rng.Uint64()>>1)
				}
				chksum = ltx.ChecksumFlag | ltx.Checksum(rng.Uint64()>>1)
			}

			var want bytes.Buffer
			ref, err := ltx.NewEncoder(&want)
			if err != nil {
				t.Fatal(err)
			}
			encodeWith(t, ref, hdr, pgnos, pages, chksum)

			var got bytes.Buffer
			dir := t.TempDir()
			enc := newLTXEncoder(&got, dir)
			enc.memLimit = tc.memLimit
			encodeWith(t, enc, hdr, pgnos, pages, chksum)

			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("encoded %d bytes differ from ltx.Encoder's %d bytes", got.Len(), want.Len())
			}
			if enc.Trailer() != ref.Trailer() {
				t.Fatalf("trailer %+v, ltx.Encoder's %+v", enc.Trailer(), ref.Trailer())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("spill files left in %s: %v", dir, entries)
			}
		})
	}
}

// Pages out of order, the lock page, and pages past the commit are refused
// as ltx.Encoder refuses them, and an abandoned encoder leaves no spill file.
func TestLTXEncoder_Refuses(t *testing.T) {
	page := make([]byte, 4096)
	snap := ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096, Commit: 10, MinTXID: 1, MaxTXID: 1, Timestamp: 1}
	diff := snap
	diff.MinTXID, diff.MaxTXID = 2, 2
	for _, tc := range []struct {
		name  string
		hdr   ltx.Header
		pgnos []uint32
		data  []byte
	}{
		{"SnapshotGap", snap, []uint32{1, 3}, page},
		{"SnapshotNotFromOne", snap, []uint32{2}, page},
		{"OutOfOrder", diff, []uint32{5, 4}, page},
		{"Repeated", diff, []uint32{5, 5}, page},
		{"PastCommit", diff, []uint32{11}, page},
		{"ShortPage", diff, []uint32{1}, page[:100]},
		{"LockPage", ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 512, Commit: (1 << 30 / 512) + 2, MinTXID: 2, MaxTXID: 2, Timestamp: 1}, []uint32{ltx.LockPgno(512)}, make([]byte, 512)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			enc := newLTXEncoder(&bytes.Buffer{}, dir)
			enc.memLimit = 1
			if err := enc.EncodeHeader(tc.hdr); err != nil {
				t.Fatal(err)
			}
			var err error
			for _, pgno := range tc.pgnos {
				if err = enc.EncodePage(ltx.PageHeader{Pgno: pgno}, tc.data); err != nil {
					break
				}
			}
			enc.release()
			if err == nil {
				t.Fatal("expected an error")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("spill files left in %s: %v", dir, entries)
			}
		})
	}
}

func FuzzLTXEncoder(f *testing.F) {
	f.Add(uint64(1), uint16(50), true, uint16(8))
	f.Add(uint64(2), uint16(400), false, uint16(1))
	f.Fuzz(func(t *testing.T, seed uint64, commit uint16, snapshot bool, memLimit uint16) {
		rng := rand.New(rand.NewPCG(seed, 0))
		hdr, pgnos, pages := randomLTXInput(rng, 512, uint32(commit%2000)+1, snapshot)
		var want, got bytes.Buffer
		ref, _ := ltx.NewEncoder(&want)
		encodeWith(t, ref, hdr, pgnos, pages, 0)
		enc := newLTXEncoder(&got, t.TempDir())
		enc.memLimit = int(memLimit) + 1
		encodeWith(t, enc, hdr, pgnos, pages, 0)
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("encoded %d bytes differ from ltx.Encoder's %d bytes", got.Len(), want.Len())
		}
	})
}

// compactLTX writes what ltx.Compactor writes, byte for byte, from inputs
// that overwrite, add and drop pages (a shrinking commit drops those past it).
func TestCompactLTX_MatchesLTX(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, commits := range [][]uint32{
		{40},
		{40, 60, 60},
		{300, 120, 200, 90},
		{5, 2000, 2000},
	} {
		var files [][]byte
		txid := ltx.TXID(1)
		var prevCommit uint32
		for i, commit := range commits {
			hdr, pgnos, pages := randomLTXInput(rng, 1024, commit, i == 0)
			// A file that grows the database holds every new page.
			for pgno := prevCommit + 1; pgno <= commit; pgno++ {
				if pages[pgno] == nil {
					pages[pgno] = bytes.Repeat([]byte{byte(i)}, 1024)
					pgnos = append(pgnos, pgno)
				}
			}
			slices.Sort(pgnos)
			prevCommit = commit
			hdr.MinTXID, hdr.MaxTXID = txid, txid+ltx.TXID(i)
			hdr.Timestamp += int64(i)
			txid = hdr.MaxTXID + 1
			var buf bytes.Buffer
			enc, err := ltx.NewEncoder(&buf)
			if err != nil {
				t.Fatal(err)
			}
			encodeWith(t, enc, hdr, pgnos, pages, 0)
			files = append(files, buf.Bytes())
		}
		readers := func() []io.Reader {
			rdrs := make([]io.Reader, len(files))
			for i, b := range files {
				rdrs[i] = bytes.NewReader(b)
			}
			return rdrs
		}

		var want bytes.Buffer
		cmp, err := ltx.NewCompactor(&want, readers())
		if err != nil {
			t.Fatal(err)
		}
		cmp.HeaderFlags = ltx.HeaderFlagNoChecksum
		if err := cmp.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := compactLTX(context.Background(), &got, readers(), t.TempDir()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("commits %v: merged %d bytes differ from ltx.Compactor's %d bytes", commits, got.Len(), want.Len())
		}
	}
}

// A damaged input fails the merge: in its page block, in its page index,
// or in its trailer, which ltx checks only when it loads the index.
func TestCompactLTX_DamagedInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	hdr, pgnos, pages := randomLTXInput(rng, 1024, 50, true)
	var buf bytes.Buffer
	enc, _ := ltx.NewEncoder(&buf)
	encodeWith(t, enc, hdr, pgnos, pages, 0)
	file := buf.Bytes()
	for _, tc := range []struct {
		name string
		off  int
	}{
		{"PageBlock", ltx.HeaderSize + 100},
		{"PageIndex", len(file) - ltx.TrailerSize - 20},
		{"Trailer", len(file) - 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			damaged := bytes.Clone(file)
			damaged[tc.off] ^= 0x40
			err := compactLTX(context.Background(), io.Discard, []io.Reader{bytes.NewReader(damaged)}, t.TempDir())
			if err == nil {
				t.Fatal("expected an error")
			}
			if _, _, verr := verifyLTX(bytes.NewReader(damaged)); verr == nil {
				t.Fatal("verifyLTX: expected an error")
			}
		})
	}
	if _, _, err := verifyLTX(bytes.NewReader(file)); err != nil {
		t.Fatalf("verifyLTX of the undamaged file: %v", err)
	}
}

// BenchmarkLTXEncoder encodes a 64 MB snapshot with ltx.Encoder and with
// ltxEncoder; -benchmem shows the memory ltx's index map takes.
func BenchmarkLTXEncoder(b *testing.B) {
	const pageSize, commit = 4096, 16384
	rng := rand.New(rand.NewPCG(7, 8))
	hdr, pgnos, pages := randomLTXInput(rng, pageSize, commit, true)
	for _, name := range []string{"ltx", "ours"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(pageSize * commit)
			for b.Loop() {
				var enc pageEncoder
				if name == "ltx" {
					enc, _ = ltx.NewEncoder(io.Discard)
				} else {
					enc = newLTXEncoder(io.Discard, b.TempDir())
				}
				encodeWith(b, enc, hdr, pgnos, pages, 0)
			}
		})
	}
}

// readLTXPage finds each page through the page index, and reports pages
// the file does not hold (between, before and after those it holds).
func TestReadLTXPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	hdr, pgnos, pages := randomLTXInput(rng, 1024, 3000, false)
	path := filepath.Join(t.TempDir(), "file.ltx")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	encodeWith(t, newLTXEncoder(f, t.TempDir()), hdr, pgnos, pages, 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var held, missing int
	for pgno := uint32(1); pgno <= hdr.Commit+1; pgno++ {
		data, err := readLTXPage(path, pgno)
		if err != nil {
			t.Fatalf("page %d: %v", pgno, err)
		}
		if want := pages[pgno]; want == nil {
			if data != nil {
				t.Fatalf("page %d: not in the file, read %d bytes", pgno, len(data))
			}
			missing++
		} else if !bytes.Equal(data, want) {
			t.Fatalf("page %d: read other bytes", pgno)
		} else {
			held++
		}
	}
	if held != len(pgnos) || missing == 0 {
		t.Fatalf("held %d of %d pages, %d missing", held, len(pgnos), missing)
	}
}
