// Tests of damaged replica and local files: each is detected and named.
package litestream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"log/slog"
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

// ltxDamage is one way a replica file can go bad, for the restore,
// compaction and follow tests. The fuzz replica is the victim (page size
// 4096); other databases' files come from the upstream fixtures.
type ltxDamage struct {
	name string
	// gap: the file is gone, so the error names the TXIDs around it.
	gap    bool
	damage func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo)
}

// flipAt flips one bit of a file at an offset from its start, or from its
// end when negative.
func flipAt(offset int) func(testing.TB, *file.ReplicaClient, *ltx.FileInfo) {
	return func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
		t.Helper()
		rewriteFile(t, client, info, func(b []byte) []byte {
			i := offset
			if i < 0 {
				i += len(b)
			}
			b[i] ^= 0x10
			return b
		})
	}
}

func rewriteFile(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo, fn func([]byte) []byte) {
	t.Helper()
	path := client.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// otherDBFile puts a file of another database in place of info.
func otherDBFile(fixture string, level int, minTXID, maxTXID ltx.TXID) func(testing.TB, *file.ReplicaClient, *ltx.FileInfo) {
	return func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
		t.Helper()
		other := file.NewReplicaClient(filepath.Join("testdata", "upstream", fixture, "replica"))
		b := mustReadFile(t, other.LTXFilePath(level, minTXID, maxTXID))
		rewriteFile(t, client, info, func([]byte) []byte { return b })
	}
}

// truncateAfterPages cuts an LTX file 3 bytes after its page block, found
// from the page index size stored before the trailer.
func truncateAfterPages(b []byte) []byte {
	indexN := int(binary.BigEndian.Uint64(b[len(b)-ltx.TrailerSize-8:]))
	return b[:len(b)-ltx.TrailerSize-8-indexN+3]
}

func ltxDamages() []ltxDamage {
	return []ltxDamage{
		{name: "HeaderCommit", damage: flipAt(15)},
		{name: "HeaderTimestamp", damage: flipAt(39)},
		{name: "PageFrame", damage: flipAt(ltx.HeaderSize + 20)},
		{name: "PageIndex", damage: flipAt(-ltx.TrailerSize - 8 - 2)},
		{name: "Trailer", damage: flipAt(-3)},
		{name: "Truncated", damage: func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
			rewriteFile(t, client, info, func(b []byte) []byte { return b[:len(b)/2] })
		}},
		// Cut 3 bytes past the page block, where ltx's decoder panicked.
		{name: "TruncatedAfterPages", damage: func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
			rewriteFile(t, client, info, truncateAfterPages)
		}},
		// A page frame claiming 4 GiB, which ltx allocated before reading.
		{name: "PageFrameSize", damage: func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
			rewriteFile(t, client, info, func(b []byte) []byte {
				binary.BigEndian.PutUint32(b[ltx.HeaderSize+ltx.PageHeaderSize:], 0xfffffff0)
				return b
			})
		}},
		{name: "Missing", gap: true, damage: func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
			if err := os.Remove(client.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID)); err != nil {
				t.Fatal(err)
			}
		}},
		// Another database's file under the same name, with other pages.
		{name: "OtherDBPageSize", damage: func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
			otherDBFile("upstream-1024", info.Level, info.MinTXID, info.MaxTXID)(t, client, info)
		}},
		// Another database's file copied in under this file's name.
		{name: "OtherDBRenamed", damage: otherDBFile("upstream-4096", 0, 1, 1)},
		// Another database's file of the same page size under its own
		// name: it does not continue the files before it (see chainLink).
		{name: "OtherDBSameName", damage: func(t testing.TB, client *file.ReplicaClient, info *ltx.FileInfo) {
			other := file.NewReplicaClient(otherReplicaDir)
			b := mustReadFile(t, other.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID))
			rewriteFile(t, client, info, func([]byte) []byte { return b })
		}},
	}
}

var updateOtherReplica = flag.Bool("update-other-replica", false, "regenerate testdata/otherreplica")

// otherReplicaDir holds the L0 files of another database of the fuzz
// replica's page size, with the same TXIDs: one WAL generation, growing
// before and at TXID 9, so that its L0 9 neither continues the fuzz
// replica's WAL range nor holds all the pages it grows the database by.
var otherReplicaDir = filepath.Join("testdata", "otherreplica")

func TestOtherReplica(t *testing.T) {
	if *updateOtherReplica {
		writeOtherReplica(t)
	}
	hdr := func(dir string, txid ltx.TXID) ltx.Header {
		dec := ltx.NewDecoder(bytes.NewReader(mustReadFile(t, file.NewReplicaClient(dir).LTXFilePath(0, txid, txid))))
		if err := dec.DecodeHeader(); err != nil {
			t.Fatal(err)
		}
		return dec.Header()
	}
	own8, other8, other9 := hdr(fuzzReplicaDir, 8), hdr(otherReplicaDir, 8), hdr(otherReplicaDir, 9)
	if other9.PageSize != own8.PageSize || other9.WALOffset == litestream.WALHeaderSize || other8.Commit <= own8.Commit+1 || other9.Commit <= other8.Commit {
		t.Fatalf("other replica does not fit the damage it stands for: own L0 8 %+v, other L0 8 %+v, L0 9 %+v", own8, other8, other9)
	}
}

func writeOtherReplica(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 1; i <= 11; i++ {
		size := 100
		if i == 2 || i == 9 {
			size = 3 * 4096 // grows the database by a few pages
		}
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, i, size); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(otherReplicaDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(otherReplicaDir, os.DirFS(client.Path())); err != nil {
		t.Fatal(err)
	}
}

// mustNameDamaged checks an error names the damaged file, or for a missing
// file the TXIDs on both sides of the hole.
func mustNameDamaged(t testing.TB, err error, d ltxDamage, info *ltx.FileInfo) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", d.name)
	}
	if !d.gap {
		mustNameFile(t, err, info)
		return
	}
	if msg := err.Error(); !strings.Contains(msg, (info.MinTXID-1).String()) || !strings.Contains(msg, (info.MaxTXID+1).String()) {
		t.Fatalf("error does not name the hole at %s: %v", info.MinTXID, err)
	}
}

// Compacting L0 into L1 with a damaged L0 file in the middle fails naming
// the file and uploads nothing to L1.
func TestCompactor_Compact_Damaged(t *testing.T) {
	victim := &ltx.FileInfo{Level: 0, MinTXID: 5, MaxTXID: 5}
	for _, d := range ltxDamages() {
		t.Run(d.name, func(t *testing.T) {
			dir := copyDir(t, fuzzReplicaDir)
			client := file.NewReplicaClient(dir)
			if err := os.RemoveAll(client.LTXLevelDir(1)); err != nil {
				t.Fatal(err)
			}
			d.damage(t, client, victim)
			info, err := litestream.NewCompactor(client, discardLogger).Compact(context.Background(), 1)
			if err == nil {
				t.Fatalf("compaction succeeded into %s", ltx.FormatFilename(info.MinTXID, info.MaxTXID))
			}
			mustNameDamaged(t, err, d, victim)
			if entries, err := os.ReadDir(client.LTXLevelDir(1)); err == nil && len(entries) > 0 {
				t.Fatalf("L1 has %s after a failed compaction", entries[0].Name())
			}
		})
	}
}

// Follow mode at TXID 8 refuses a damaged L0 9: the error names it, the
// database is unchanged and the TXID does not move past it.
func TestReplica_Follow_Damaged(t *testing.T) {
	plan := fuzzReplicaPlan(t, 0)
	victim := plan[2]
	prev := victim.MinTXID - 1
	base := mustReadFile(t, MustRestore(t, litestream.NewReplicaWithClient(nil, file.NewReplicaClient(fuzzReplicaDir)), prev))
	for _, d := range ltxDamages() {
		t.Run(d.name, func(t *testing.T) {
			client := file.NewReplicaClient(copyDir(t, fuzzReplicaDir))
			d.damage(t, client, victim)
			f := mustOpenCopy(t, base)
			path := f.Name()
			next, err := litestream.NewReplicaWithClient(nil, client).ApplyNewFiles(context.Background(), f, prev)
			mustNameDamaged(t, err, d, victim)
			if next != prev {
				t.Fatalf("follow moved to %s past the damaged file", next)
			}
			if !bytes.Equal(mustReadFile(t, path), base) {
				t.Fatal("follow changed the database")
			}
		})
	}
}

// The same through the follow loop: a follower restored to TXID 8 logs the
// damaged L0 9 when it appears, and neither its database nor its TXID moves.
func TestReplica_Restore_FollowDamaged(t *testing.T) {
	victim := fuzzReplicaPlan(t, 0)[2]
	prev := victim.MinTXID - 1
	for _, d := range ltxDamages() {
		t.Run(d.name, func(t *testing.T) {
			// The files after prev wait in a staging copy, damaged there,
			// until the follower runs; then they appear in order.
			staging := file.NewReplicaClient(copyDir(t, fuzzReplicaDir))
			d.damage(t, staging, victim)
			client := file.NewReplicaClient(copyDir(t, fuzzReplicaDir))
			var later []*ltx.FileInfo
			for _, info := range fuzzReplicaPlan(t, 0) {
				if info.MinTXID > prev {
					later = append(later, info)
					if err := os.Remove(client.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID)); err != nil {
						t.Fatal(err)
					}
				}
			}

			var logs syncBuffer
			owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
			owner.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			out := filepath.Join(t.TempDir(), "db")
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				opt := litestream.NewRestoreOptions()
				opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 10*time.Millisecond
				errc <- litestream.NewReplicaWithClient(owner, client).Restore(ctx, opt)
			}()
			waitFor(t, 10*time.Second, "initial restore", func() bool {
				txid, _ := litestream.ReadTXIDFile(out)
				return txid == prev
			})
			before := mustReadFile(t, out)

			for _, info := range later {
				err := os.Rename(staging.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID), client.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID))
				if err != nil && !(d.gap && info.MinTXID == victim.MinTXID) {
					t.Fatal(err)
				}
			}
			waitFor(t, 10*time.Second, "follower to log the damaged file", func() bool {
				return strings.Contains(logs.String(), "follow failed")
			})
			cancel()
			if err := <-errc; err != nil {
				t.Fatalf("follow returned %v", err)
			}
			msg := logs.String()
			if i := strings.Index(msg, "follow failed"); i >= 0 {
				msg = msg[i:]
			}
			mustNameDamaged(t, errors.New(msg), d, victim)
			if txid, _ := litestream.ReadTXIDFile(out); txid != prev {
				t.Fatalf("follower moved to %s past the damaged file", txid)
			}
			// Blank the journal mode, which the follower may set after the
			// copy above was taken.
			if !bytes.Equal(followView(mustReadFile(t, out)), followView(before)) {
				t.Fatal("follower changed the database")
			}
		})
	}
}

// A store compacting a live database fails naming a damaged L0 input, with
// nothing written to L1, whether it reads the replica's copy (the local one
// is gone) or a damaged local copy (the replica's is sound); repaired, the
// same compaction goes through.
func TestStore_CompactDB_DamagedL0(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(map[bool]string{false: "Remote", true: "Local"}[local], func(t *testing.T) {
			ctx := context.Background()
			db, app, client := MustOpenDB(t, 4096)
			for i := 0; i < 3; i++ {
				if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
					t.Fatal(err)
				}
				if err := db.SyncAndWait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			path, name := client.LTXFilePath(0, 2, 2), "ltx/0/0000000000000002-0000000000000002.ltx"
			if local {
				path, name = db.LTXPath(0, 2, 2), "local "+name
			} else if err := os.Remove(db.LTXPath(0, 2, 2)); err != nil {
				t.Fatal(err)
			}
			good := mustReadFile(t, path)
			damaged := append([]byte(nil), good...)
			damaged[ltx.HeaderSize+20] ^= 0x01
			if err := os.WriteFile(path, damaged, 0o644); err != nil {
				t.Fatal(err)
			}

			store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
			_, err := store.CompactDB(ctx, db, litestream.DefaultCompactionLevels[1])
			if err == nil || !strings.Contains(err.Error(), name) || !errors.Is(err, litestream.ErrLTXCorrupted) {
				t.Fatalf("err = %v, want ErrLTXCorrupted naming %s", err, name)
			}
			if entries, err := os.ReadDir(client.LTXLevelDir(1)); err == nil && len(entries) > 0 {
				t.Fatalf("L1 has %s after a failed compaction", entries[0].Name())
			}

			if err := os.WriteFile(path, good, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := store.CompactDB(ctx, db, litestream.DefaultCompactionLevels[1]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Reading a file whose page frame claims 4 GiB fails without allocating it,
// in restore, compaction and follow alike.
func TestLTX_HugePageFrame(t *testing.T) {
	victim := fuzzReplicaPlan(t, 0)[2]
	var damage ltxDamage
	for _, d := range ltxDamages() {
		if d.name == "PageFrameSize" {
			damage = d
		}
	}
	client := file.NewReplicaClient(copyDir(t, fuzzReplicaDir))
	damage.damage(t, client, victim)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "db")
	restoreErr := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt)
	if err := os.RemoveAll(client.LTXLevelDir(1)); err != nil { // so that L0 9 is an input
		t.Fatal(err)
	}
	_, compactErr := litestream.NewCompactor(client, discardLogger).Compact(context.Background(), 1)
	runtime.ReadMemStats(&after)
	if restoreErr == nil || !strings.Contains(restoreErr.Error(), "compressed bytes") {
		t.Fatalf("restore: err = %v, want a page frame size error", restoreErr)
	}
	if compactErr == nil {
		t.Fatal("compaction succeeded")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<28 {
		t.Fatalf("allocated %d MiB reading a damaged file", n>>20)
	}
}

// mustOpenCopy writes b to a new file and opens it for reading and writing
// until the test ends.
func mustOpenCopy(t testing.TB, b []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// Every byte of an L0 file a latest restore uses, flipped in turn: the
// restore fails whenever ltx's own Verify rejects the file, the header's
// reserved bytes included (they are under the file checksum too).
func TestReplica_Restore_DetectsEveryByteFlip(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	mustInsertReplicated(t, db, app, 1, 3)
	if err := db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	name := ltx.FormatFilename(2, 2)
	orig, err := os.ReadFile(filepath.Join(client.Path(), "ltx", "0", name))
	if err != nil {
		t.Fatal(err)
	}
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyDir, os.DirFS(client.Path())); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(copyDir, "ltx", "0", name)
	var undetected []int
	for i := range orig {
		b := bytes.Clone(orig)
		b[i] ^= 0x10
		if ltx.NewDecoder(bytes.NewReader(b)).Verify() == nil {
			continue // ltx itself cannot tell
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
		if err := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(copyDir)).Restore(context.Background(), opt); err == nil {
			undetected = append(undetected, i)
		}
	}
	if len(undetected) > 0 {
		t.Errorf("%d of %d byte flips in %s restored without error, at offsets %v", len(undetected), len(orig), name, undetected)
	}
}
