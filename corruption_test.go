package litestream_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// ltxDamage is one way a replica file can go bad. The fuzz replica is the
// victim (page size 4096); other databases' files come from the upstream
// fixtures.
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
	if msg := err.Error(); !strings.Contains(msg, (info.MinTXID - 1).String()) || !strings.Contains(msg, (info.MaxTXID + 1).String()) {
		t.Fatalf("error does not name the hole at %s: %v", info.MinTXID, err)
	}
}

// Every kind of damage to a file in the middle of the plan fails the restore
// with an error naming the file, and leaves no output nor temporary file.
func TestReplica_Restore_Damaged(t *testing.T) {
	plan := fuzzReplicaPlan(t, 0)
	victim := plan[2] // L0 9: a file in the middle of L0 and of the plan
	for _, d := range ltxDamages() {
		t.Run(d.name, func(t *testing.T) {
			client := file.NewReplicaClient(copyDir(t, fuzzReplicaDir))
			d.damage(t, client, victim)
			out := t.TempDir()
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = filepath.Join(out, "db")
			err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt)
			mustNameDamaged(t, err, d, victim)
			mustNothingLeft(t, out)
		})
	}

	// Another database's snapshot is newer than everything else, so only a
	// page size that differs from the rest of the chain gives it away.
	t.Run("OtherDBSnapshot", func(t *testing.T) {
		dir := copyDir(t, fuzzReplicaDir)
		client := file.NewReplicaClient(dir)
		snap := &ltx.FileInfo{Level: litestream.SnapshotLevel, MinTXID: 1, MaxTXID: 5}
		if err := os.MkdirAll(client.LTXLevelDir(snap.Level), 0o755); err != nil {
			t.Fatal(err)
		} else if err := os.WriteFile(client.LTXFilePath(snap.Level, 1, 5), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		otherDBFile("upstream-1024", snap.Level, 1, 5)(t, client, snap)
		out := t.TempDir()
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(out, "db")
		err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt)
		if err == nil || !strings.Contains(err.Error(), "page size") {
			t.Fatalf("err = %v, want a page size error", err)
		}
		mustNothingLeft(t, out)
	})
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
			path := filepath.Join(t.TempDir(), "db")
			if err := os.WriteFile(path, base, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
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
