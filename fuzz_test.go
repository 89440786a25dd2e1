// Fuzz tests of the WAL reader, the restore plan, restore and follow.
package litestream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "regenerate testdata/fuzzreplica and the seed corpora under testdata/fuzz")

// fuzzReplicaDir holds a small replica written by this library: an L1 file
// and L0 files past it, so the latest restore plan is [L1 1-7, L0 8..11].
var fuzzReplicaDir = filepath.Join("testdata", "fuzzreplica")

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestFuzzSeeds checks the checked-in fuzz inputs are what the fuzz targets
// expect; with -update-fuzz-seeds it first rewrites them from a real DB.
func TestFuzzSeeds(t *testing.T) {
	if *updateFuzzSeeds {
		writeFuzzSeeds(t)
	}
	plan := fuzzReplicaPlan(t, 0)
	if got := fmt.Sprint(planNames(plan)); got != "[L1 1-7 L0 8-8 L0 9-9 L0 10-10 L0 11-11]" {
		t.Fatalf("fuzz replica plan = %s", got)
	}
	for _, name := range []string{"FuzzWALReader", "FuzzCalcRestorePlan", "FuzzRestoreLTX", "FuzzFollowLTX"} {
		entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil {
			t.Fatal(err)
		} else if len(entries) == 0 {
			t.Fatalf("no seeds for %s", name)
		}
	}
	// The WAL seeds are real WALs with committed frames.
	entries, _ := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzWALReader"))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzWALReader", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		wal := decodeSeedBytes(t, b)
		if frames, _, ok := refWALFrames(wal); !ok || len(frames) == 0 {
			t.Fatalf("seed %s: not a WAL with valid frames", e.Name())
		}
	}
}

func planNames(plan []*ltx.FileInfo) []string {
	a := make([]string, len(plan))
	for i, info := range plan {
		a[i] = fmt.Sprintf("L%d %d-%d", info.Level, info.MinTXID, info.MaxTXID)
	}
	return a
}

// writeFuzzSeeds builds a small replica from a live DB and writes it and the
// seed corpora (its WALs and LTX files) into testdata.
func writeFuzzSeeds(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 512)
	var wals [][]byte
	step := func(query string) {
		t.Helper()
		// A truncated WAL keeps each seed to this step's few frames.
		if err := db.Checkpoint(ctx, litestream.CheckpointModeTruncate); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Exec(query); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(db.Path() + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		wals = append(wals, b)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step(`INSERT INTO t (v, pad) VALUES (1, randomblob(100)), (2, randomblob(300))`)
	step(`INSERT INTO t (v, pad) VALUES (3, randomblob(600))`)
	step(`UPDATE t SET v = v * 10 WHERE v = 1`)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	step(`INSERT INTO t (v, pad) VALUES (4, zeroblob(50))`)
	step(`DELETE FROM t WHERE v = 2`)

	if err := os.RemoveAll(fuzzReplicaDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(fuzzReplicaDir, os.DirFS(client.Path())); err != nil {
		t.Fatal(err)
	}

	seeds := map[string][][]any{}
	for i, wal := range wals {
		seeds["FuzzWALReader"] = append(seeds["FuzzWALReader"], []any{wal, uint8(i)})
	}
	plan := fuzzReplicaPlan(t, 0)
	for i, info := range plan {
		seeds["FuzzRestoreLTX"] = append(seeds["FuzzRestoreLTX"], []any{uint8(i), readFuzzReplicaFile(t, info)})
	}
	seeds["FuzzFollowLTX"] = [][]any{{readFuzzReplicaFile(t, plan[len(plan)-1])}}
	// Upstream's reference plan scenarios (SPEC §11.3), as fuzzPlanFiles input.
	for i, sc := range [][]byte{
		{9, 4, 0, 0, 1, 5, 0, 0, 1, 7, 1, 0, 1, 9, 2, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0},
		{9, 4, 0, 0, 2, 5, 6, 0, 0, 5, 7, 0},
		{9, 0, 0, 0, 2, 0, 7, 0, 2, 49, 7, 0},
		{0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0},
	} {
		seeds["FuzzCalcRestorePlan"] = append(seeds["FuzzCalcRestorePlan"], []any{sc, uint8(i * 3), uint8(0)})
	}

	for name, inputs := range seeds {
		// Regression inputs (other names) stay.
		dir := filepath.Join("testdata", "fuzz", name)
		old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		for _, path := range old {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, args := range inputs {
			var buf bytes.Buffer
			buf.WriteString("go test fuzz v1\n")
			for _, arg := range args {
				switch v := arg.(type) {
				case []byte:
					fmt.Fprintf(&buf, "[]byte(%q)\n", v)
				case uint8:
					fmt.Fprintf(&buf, "uint8(%d)\n", v)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// decodeSeedBytes returns the first []byte value of a corpus file.
func decodeSeedBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, "[]byte("); ok {
			v, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
			if err != nil {
				t.Fatal(err)
			}
			return []byte(v)
		}
	}
	t.Fatal("no []byte value in corpus file")
	return nil
}

func fuzzReplicaPlan(t testing.TB, txid ltx.TXID) []*ltx.FileInfo {
	t.Helper()
	plan, err := litestream.CalcRestorePlan(context.Background(), file.NewReplicaClient(fuzzReplicaDir), txid, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func readFuzzReplicaFile(t testing.TB, info *ltx.FileInfo) []byte {
	t.Helper()
	b, err := os.ReadFile(file.NewReplicaClient(fuzzReplicaDir).LTXFilePath(info.Level, info.MinTXID, info.MaxTXID))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refFrame is a WAL frame found valid by refWALFrames.
type refFrame struct {
	offset       int64
	pgno, commit uint32
	data         []byte
}

// refWALFrames is an independent reading of a WAL: the frames from the start
// whose salts match the header and whose cumulative checksums chain. ok is
// false when the header itself is unusable.
func refWALFrames(b []byte) (frames []refFrame, salts [2]uint32, ok bool) {
	if len(b) < 32 {
		return nil, salts, false
	}
	var bo binary.ByteOrder
	switch binary.BigEndian.Uint32(b) {
	case 0x377f0682:
		bo = binary.LittleEndian
	case 0x377f0683:
		bo = binary.BigEndian
	default:
		return nil, salts, false
	}
	sum := func(s0, s1 uint32, p []byte) (uint32, uint32) {
		for i := 0; i+8 <= len(p); i += 8 {
			s0 += bo.Uint32(p[i:]) + s1
			s1 += bo.Uint32(p[i+4:]) + s0
		}
		return s0, s1
	}
	be := binary.BigEndian
	s0, s1 := sum(0, 0, b[:24])
	pageSize := int64(be.Uint32(b[8:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if be.Uint32(b[4:]) != 3007000 || s0 != be.Uint32(b[24:]) || s1 != be.Uint32(b[28:]) ||
		pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return nil, salts, false
	}
	salts = [2]uint32{be.Uint32(b[16:]), be.Uint32(b[20:])}
	for off := int64(32); off+24+pageSize <= int64(len(b)); off += 24 + pageSize {
		hdr, data := b[off:off+24], b[off+24:off+24+pageSize]
		if be.Uint32(hdr[8:]) != salts[0] || be.Uint32(hdr[12:]) != salts[1] {
			break
		}
		s0, s1 = sum(s0, s1, hdr[:8])
		s0, s1 = sum(s0, s1, data)
		if s0 != be.Uint32(hdr[16:]) || s1 != be.Uint32(hdr[20:]) {
			break
		}
		frames = append(frames, refFrame{offset: off, pgno: be.Uint32(hdr), commit: be.Uint32(hdr[4:]), data: data})
	}
	return frames, salts, true
}

// The WAL reader returns exactly the frames whose checksums chain, whether
// read from the start or resumed, and its page map is that of the committed
// frames.
func FuzzWALReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, wal []byte, resume uint8) {
		ctx := context.Background()
		want, salts, ok := refWALFrames(wal)
		r, err := litestream.NewWALReader(bytes.NewReader(wal), discardLogger)
		if err != nil {
			if ok {
				t.Fatalf("reader refused a valid header: %v", err)
			}
			return
		} else if !ok {
			t.Fatal("reader accepted an invalid header")
		}

		mustReadFrames(t, r, want)

		r, err = litestream.NewWALReader(bytes.NewReader(wal), discardLogger)
		if err != nil {
			t.Fatal(err)
		}
		m, maxOffset, commit, err := r.PageMap(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantM, wantMax, wantCommit := refPageMap(want, int64(r.PageSize())+24)
		if fmt.Sprint(m) != fmt.Sprint(wantM) || maxOffset != wantMax || commit != wantCommit {
			t.Fatalf("page map = %v, %d, %d; want %v, %d, %d", m, maxOffset, commit, wantM, wantMax, wantCommit)
		}

		if len(want) == 0 {
			return
		}
		k := 1 + int(resume)%len(want)
		offset := 32 + int64(k)*(int64(r.PageSize())+24)
		r, err = litestream.NewWALReaderWithOffset(ctx, bytes.NewReader(wal), offset, salts[0], salts[1], discardLogger)
		if err != nil {
			t.Fatalf("resume at frame %d: %v", k, err)
		}
		mustReadFrames(t, r, want[k:])

		var mismatch *litestream.PrevFrameMismatchError
		if _, err := litestream.NewWALReaderWithOffset(ctx, bytes.NewReader(wal), offset, salts[0]+1, salts[1], discardLogger); !errors.As(err, &mismatch) {
			t.Fatalf("resume with other salts: err = %v, want PrevFrameMismatchError", err)
		}
		r, _ = litestream.NewWALReader(bytes.NewReader(wal), discardLogger)
		if got, err := r.FrameSaltsUntil(ctx, salts); err != nil {
			t.Fatal(err)
		} else if _, ok := got[salts]; !ok {
			t.Fatalf("frame salts %v lack the header's %v", got, salts)
		}
	})
}

func mustReadFrames(t *testing.T, r *litestream.WALReader, want []refFrame) {
	t.Helper()
	buf := make([]byte, r.PageSize())
	for i := 0; ; i++ {
		pgno, commit, err := r.ReadFrame(context.Background(), buf)
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("reader stopped after %d frames, want %d", i, len(want))
			}
			return
		} else if err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			t.Fatalf("reader returned frame %d at %d, which fails checksum chaining", i, r.Offset())
		}
		w := want[i]
		if r.Offset() != w.offset || pgno != w.pgno || commit != w.commit || !bytes.Equal(buf, w.data) {
			t.Fatalf("frame %d: offset=%d pgno=%d commit=%d, want offset=%d pgno=%d commit=%d (or other data)", i, r.Offset(), pgno, commit, w.offset, w.pgno, w.commit)
		}
	}
}

// refPageMap maps pages to their newest committed frame.
func refPageMap(frames []refFrame, frameSize int64) (map[uint32]int64, int64, uint32) {
	m, tx := map[uint32]int64{}, map[uint32]int64{}
	var maxOffset int64
	var commit uint32
	for _, f := range frames {
		tx[f.pgno] = f.offset
		if f.commit != 0 {
			for pgno, off := range tx {
				m[pgno] = off
			}
			clear(tx)
			commit, maxOffset = f.commit, f.offset+frameSize
		}
	}
	for pgno := range m {
		if pgno > commit {
			delete(m, pgno)
		}
	}
	if len(m) == 0 {
		return m, 0, 0
	}
	return m, maxOffset, commit
}

// fuzzPlanFiles turns each 4 bytes of b into a file: level, MinTXID, span,
// creation minute. Snapshots start at TXID 1, as the writer makes them.
func fuzzPlanFiles(b []byte) []*ltx.FileInfo {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var infos []*ltx.FileInfo
	for i := 0; i+4 <= len(b) && i < 4*48; i += 4 {
		level := int(b[i]) % (litestream.SnapshotLevel + 1)
		minTXID := ltx.TXID(b[i+1]%32) + 1
		maxTXID := minTXID + ltx.TXID(b[i+2]%8)
		if level == litestream.SnapshotLevel {
			minTXID = 1
		}
		infos = append(infos, &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, CreatedAt: base.Add(time.Duration(b[i+3]) * time.Minute)})
	}
	return infos
}

// refReach is how far a chain of files can reach from TXID 1, starting from
// the newest usable snapshot, using only files eligible for the target.
func refReach(infos []*ltx.FileInfo, eligible func(*ltx.FileInfo) bool) ltx.TXID {
	var reach ltx.TXID
	for _, info := range infos {
		if info.Level == litestream.SnapshotLevel && eligible(info) {
			reach = max(reach, info.MaxTXID)
		}
	}
	for grew := true; grew; {
		grew = false
		for _, info := range infos {
			if info.Level != litestream.SnapshotLevel && eligible(info) && info.MinTXID <= reach+1 && info.MaxTXID > reach {
				reach, grew = info.MaxTXID, true
			}
		}
	}
	return reach
}

// A restore plan is a contiguous chain of listed, eligible files from TXID 1
// that ends exactly at the target, or latest at the furthest reachable TXID;
// otherwise the error says why.
func FuzzCalcRestorePlan(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, txid uint8, tsMinute uint8) {
		client := file.NewReplicaClient(t.TempDir())
		infos := fuzzPlanFiles(b)
		listed := map[string]*ltx.FileInfo{}
		for _, info := range infos {
			path := client.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			} else if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			} else if err := os.Chtimes(path, info.CreatedAt, info.CreatedAt); err != nil {
				t.Fatal(err)
			}
			listed[path] = info // a later duplicate's time wins, as on disk
		}
		infos = infos[:0]
		for _, info := range listed {
			infos = append(infos, info)
		}

		var ts time.Time
		if tsMinute > 0 {
			ts = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(tsMinute) * time.Minute)
		}
		target := ltx.TXID(txid)
		plan, err := litestream.CalcRestorePlan(context.Background(), client, target, ts, nil)
		if target != 0 && !ts.IsZero() {
			if err == nil {
				t.Fatal("plan accepted both a TXID and a timestamp")
			}
			return
		}
		eligible := func(info *ltx.FileInfo) bool {
			return (target == 0 || info.MaxTXID <= target) && (ts.IsZero() || info.CreatedAt.Before(ts))
		}
		reach := refReach(infos, eligible)
		gap := false
		for _, info := range infos {
			gap = gap || (info.Level != litestream.SnapshotLevel && info.MinTXID > reach+1)
		}

		switch {
		case reach == 0 || (target != 0 && reach < target):
			if !errors.Is(err, litestream.ErrTxNotAvailable) {
				t.Fatalf("reach %d: err = %v, want ErrTxNotAvailable", reach, err)
			}
			return
		case target == 0 && ts.IsZero() && gap:
			if err == nil || !strings.Contains(err.Error(), "non-contiguous ltx files") {
				t.Fatalf("reach %d with files past a gap: err = %v", reach, err)
			}
			return
		case err != nil:
			t.Fatalf("reach %d: %v", reach, err)
		}

		var cur ltx.TXID
		for i, info := range plan {
			got, ok := listed[client.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID)]
			switch {
			case !ok:
				t.Fatalf("plan file %d (%v) is not in the replica", i, planNames(plan))
			case !eligible(got):
				t.Fatalf("plan file %d (%v) is not eligible", i, planNames(plan))
			case info.MinTXID > cur+1 || info.MaxTXID <= cur:
				t.Fatalf("plan %v is not contiguous at file %d", planNames(plan), i)
			}
			cur = info.MaxTXID
		}
		if cur != reach {
			t.Fatalf("plan %v ends at %d, want %d", planNames(plan), cur, reach)
		}
	})
}

// mustNameFile checks an error names the file, by path or TXID range.
func mustNameFile(t testing.TB, err error, info *ltx.FileInfo) {
	t.Helper()
	if msg := err.Error(); !strings.Contains(msg, ltx.FormatFilename(info.MinTXID, info.MaxTXID)) &&
		!(strings.Contains(msg, info.MinTXID.String()) && strings.Contains(msg, info.MaxTXID.String())) {
		t.Fatalf("error does not name L%d %s: %v", info.Level, ltx.FormatFilename(info.MinTXID, info.MaxTXID), err)
	}
}

// copyFuzzReplica copies the fuzz replica with one file's bytes replaced.
func copyFuzzReplica(t testing.TB, replace *ltx.FileInfo, data []byte) *file.ReplicaClient {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(fuzzReplicaDir)); err != nil {
		t.Fatal(err)
	}
	client := file.NewReplicaClient(dir)
	if err := os.WriteFile(client.LTXFilePath(replace.Level, replace.MinTXID, replace.MaxTXID), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return client
}

// Restoring from a replica with one file's bytes replaced either gives the
// original database or fails naming that file and leaves nothing behind.
func FuzzRestoreLTX(f *testing.F) {
	plan := fuzzReplicaPlan(f, 0)
	want := mustReadFile(f, MustRestore(f, litestream.NewReplicaWithClient(nil, file.NewReplicaClient(fuzzReplicaDir)), 0))
	f.Fuzz(func(t *testing.T, slot uint8, data []byte) {
		info := plan[int(slot)%len(plan)]
		client := copyFuzzReplica(t, info, data)
		out := t.TempDir()
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(out, "db")
		err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt)
		if err != nil {
			mustNameFile(t, err, info)
			mustNothingLeft(t, out)
			return
		}
		if !bytes.Equal(mustReadFile(t, opt.OutputPath), want) {
			t.Fatalf("restore with a changed L%d %s succeeded with a different database", info.Level, ltx.FormatFilename(info.MinTXID, info.MaxTXID))
		}
	})
}

// Follow mode applying a changed newest L0 file onto the database just
// before it either reaches the database the original file gives or fails
// naming the file and leaves the database as it was.
func FuzzFollowLTX(f *testing.F) {
	plan := fuzzReplicaPlan(f, 0)
	info := plan[len(plan)-1]
	prev := info.MinTXID - 1
	r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(fuzzReplicaDir))
	base := mustReadFile(f, MustRestore(f, r, prev))
	want := followView(mustReadFile(f, MustRestore(f, r, info.MaxTXID)))
	f.Fuzz(func(t *testing.T, data []byte) {
		client := copyFuzzReplica(t, info, data)
		db := mustOpenCopy(t, base)
		path := db.Name()
		next, err := litestream.NewReplicaWithClient(nil, client).ApplyNewFiles(context.Background(), db, prev)
		got := mustReadFile(t, path)
		if err != nil || next == prev {
			if err != nil {
				mustNameFile(t, err, info)
			}
			if !bytes.Equal(got, base) {
				t.Fatalf("follow changed the database without applying the file (err = %v)", err)
			}
			return
		}
		if next != info.MaxTXID || !bytes.Equal(followView(got), want) {
			t.Fatalf("follow applied a changed file: reached %d with a different database", next)
		}
	})
}

// followView blanks the page-1 bytes follow mode rewrites: the journal
// mode, the change counter, and the version-valid-for number and SQLite
// version that go with it.
func followView(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) >= 100 {
		b[18], b[19] = 0, 0
		clear(b[24:28])
		clear(b[92:100])
	}
	return b
}

func mustReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
