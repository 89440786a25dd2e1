// v3_restore_test.go restores v0.3.x backups built by internal/v3gen from a
// file replica: latest, points in time inside generations, encrypted ones,
// damaged ones, and Restore's choice between v0.3.x and LTX data.
package litestream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/pierrec/lz4/v4"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/v3gen"
)

// MustV3Replica writes g's backup to a new file replica and returns it.
func MustV3Replica(t testing.TB, g *v3gen.Generator) (*litestream.Replica, string) {
	t.Helper()
	root := t.TempDir()
	g.WriteDir(root)
	return litestream.NewReplicaWithClient(nil, file.NewReplicaClient(root)), root
}

func TestReplica_RestoreV3(t *testing.T) {
	for _, pageSize := range []int{1024, 4096} {
		t.Run("Latest", func(t *testing.T) {
			g, seed := v3gen.NewSeeded(t, pageSize)
			g.Build(2)
			r, _ := MustV3Replica(t, g)

			out := filepath.Join(t.TempDir(), "db")
			if err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out}); err != nil {
				t.Fatalf("seed %d: restore: %v", seed, err)
			}
			if got, want := v3gen.MustState(t, out), g.Files[len(g.Files)-1].State; got != want {
				t.Fatalf("seed %d: state %s, want %s", seed, got, want)
			}
			if _, err := os.Stat(out + "-wal"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("-wal left next to restored database: %v", err)
			}
		})
	}

	t.Run("EveryPointInTime", func(t *testing.T) {
		g, seed := v3gen.NewSeeded(t, 1024)
		g.Build(2)
		r, _ := MustV3Replica(t, g)
		for i, f := range g.Files {
			out := filepath.Join(t.TempDir(), "db")
			if err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out, Timestamp: f.Time}); err != nil {
				t.Fatalf("seed %d: restore to file %d (%s): %v", seed, i, f.Path, err)
			}
			if got := v3gen.MustState(t, out); got != f.State {
				t.Fatalf("seed %d: restore to %s (file %d, %s): state %s, want %s", seed, f.Time, i, f.Path, got, f.State)
			}
			if i%2 == 0 {
				continue
			}
			// Half a second later is still the same state.
			out2 := filepath.Join(t.TempDir(), "db")
			if err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out2, Timestamp: f.Time.Add(500 * time.Millisecond)}); err != nil {
				t.Fatalf("seed %d: restore after file %d: %v", seed, i, err)
			} else if got := v3gen.MustState(t, out2); got != f.State {
				t.Fatalf("seed %d: restore after file %d: state %s, want %s", seed, i, got, f.State)
			}
		}
	})

	t.Run("TieBetweenGenerations", func(t *testing.T) {
		// Both generations' snapshots carry the same (whole-second) time;
		// the second generation has the newer segment and must win,
		// whichever way the generation names sort.
		for seed := uint64(1); seed <= 4; seed++ {
			g := v3gen.New(t, seed, 4096)
			g.NewGeneration()
			tie := g.Files[0].Time
			g.Write(2)
			g.SetTime(tie.Add(-time.Second))
			g.NewGeneration()
			g.SetTime(tie.Add(time.Second))
			g.Write(2)
			r, _ := MustV3Replica(t, g)
			out := filepath.Join(t.TempDir(), "db")
			if err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out}); err != nil {
				t.Fatalf("seed %d: restore: %v", seed, err)
			} else if got, want := v3gen.MustState(t, out), g.Files[len(g.Files)-1].State; got != want {
				t.Fatalf("seed %d: state %s, want %s (the second generation's)", seed, got, want)
			}
		}
	})

	t.Run("ErrBeforeFirstSnapshot", func(t *testing.T) {
		g := v3gen.New(t, 1, 4096)
		g.Build(1)
		r, _ := MustV3Replica(t, g)
		err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db"), Timestamp: g.Files[0].Time.Add(-time.Second)})
		if !errors.Is(err, litestream.ErrNoSnapshots) {
			t.Fatalf("got %v, want ErrNoSnapshots", err)
		}
	})

	t.Run("ErrNoBackup", func(t *testing.T) {
		r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(t.TempDir()))
		err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db")})
		if !errors.Is(err, litestream.ErrNoSnapshots) {
			t.Fatalf("got %v, want ErrNoSnapshots", err)
		}
	})

	t.Run("ErrMissingSegment", func(t *testing.T) {
		g := v3gen.New(t, 2, 4096)
		g.NewGeneration()
		g.Write(2)
		g.Write(2) // removed below: the next one then starts past the end
		g.Write(2)
		r, root := MustV3Replica(t, g)
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(g.Files[2].Path))); err != nil {
			t.Fatal(err)
		}
		err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db")})
		if err == nil || !strings.Contains(err.Error(), "gap") {
			t.Fatalf("got %v, want gap error", err)
		}
	})

	t.Run("ErrMissingIndex", func(t *testing.T) {
		g := v3gen.New(t, 3, 4096)
		g.NewGeneration()
		g.Write(2)
		g.Checkpoint()
		g.Write(2) // index 1: removed below
		g.Checkpoint()
		g.Write(2)
		r, root := MustV3Replica(t, g)
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(litestream.WALSegmentPathV3("", g.Generation(), 1, 0)))); err != nil {
			t.Fatal(err)
		}
		err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db")})
		if err == nil || !strings.Contains(err.Error(), "missing wal index") {
			t.Fatalf("got %v, want missing wal index error", err)
		}
	})

	t.Run("ErrCorruptFrame", func(t *testing.T) {
		g := v3gen.New(t, 4, 1024)
		g.NewGeneration()
		g.Write(3)
		g.Write(3)
		// Rewrite the second segment with a flipped byte inside a page.
		f := g.Files[len(g.Files)-1]
		plain := mustDecodeV3(t, f.Data)
		plain[len(plain)-100] ^= 0xff
		r, root := MustV3Replica(t, g)
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(f.Path)), mustEncodeV3(t, plain), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "db")
		err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out})
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("got %v, want checksum mismatch", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("output exists after failed restore: %v", err)
		}
	})

	t.Run("ErrTruncatedSnapshot", func(t *testing.T) {
		g := v3gen.New(t, 8, 4096)
		g.NewGeneration()
		g.Write(50)
		g.Checkpoint()
		g.Write(1)
		g.Snapshot()
		r, root := MustV3Replica(t, g)
		snap := g.Files[len(g.Files)-1]
		for _, n := range []int{len(snap.Data) / 2, len(snap.Data) - 12, len(snap.Data) - 8, len(snap.Data) - 5, len(snap.Data) - 4, len(snap.Data) - 1} {
			if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(snap.Path)), snap.Data[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db")})
			if err == nil || !strings.Contains(err.Error(), snap.Path) {
				t.Fatalf("snapshot cut to %d of %d bytes: got %v, want an error naming %s", n, len(snap.Data), err, snap.Path)
			}
		}
	})

	t.Run("ErrOutputExists", func(t *testing.T) {
		g := v3gen.New(t, 5, 4096)
		g.Build(1)
		r, _ := MustV3Replica(t, g)
		out := filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(out, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.RestoreV3(context.Background(), litestream.RestoreOptions{OutputPath: out}); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("got %v, want already exists", err)
		}
	})
}

func TestReplica_RestoreV3_Age(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	g := v3gen.New(t, 6, 4096, id.Recipient())
	g.Build(2)
	r, _ := MustV3Replica(t, g)

	t.Run("OK", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "db")
		mid := g.Files[len(g.Files)/2]
		opt := litestream.RestoreOptions{OutputPath: out, Timestamp: mid.Time, AgeIdentities: []age.Identity{id}}
		if err := r.Restore(context.Background(), opt); err != nil {
			t.Fatalf("restore: %v", err)
		} else if got := v3gen.MustState(t, out); got != mid.State {
			t.Fatalf("state %s, want %s", got, mid.State)
		}
	})
	t.Run("ErrNoIdentity", func(t *testing.T) {
		err := r.Restore(context.Background(), litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db")})
		if !errors.Is(err, internal.ErrV3Encrypted) {
			t.Fatalf("got %v, want ErrV3Encrypted", err)
		}
	})
	t.Run("ErrWrongIdentity", func(t *testing.T) {
		other, _ := age.GenerateX25519Identity()
		err := r.Restore(context.Background(), litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db"), AgeIdentities: []age.Identity{other}})
		if err == nil || !strings.Contains(err.Error(), "age decrypt") {
			t.Fatalf("got %v, want age decrypt error", err)
		}
	})
}

// mustDecodeV3 returns the plaintext of an unencrypted v0.3.x file.
func mustDecodeV3(t testing.TB, data []byte) []byte {
	t.Helper()
	rc, err := internal.OpenV3File(io.NopCloser(bytes.NewReader(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustEncodeV3 LZ4-frames plain as v0.3.x stored it.
func mustEncodeV3(t testing.TB, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := lz4.NewWriter(&buf)
	if _, err := zw.Write(plain); err != nil {
		t.Fatal(err)
	} else if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReplica_Restore_PicksV3 checks Restore's choice, by upstream's rule,
// between a v0.3.x backup and LTX files in the same replica.
func TestReplica_Restore_PicksV3(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (1, 1), (2, 2)`); err != nil {
		t.Fatal(err)
	} else if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	} else if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	ltxState := MustDump(t, app)
	_, ltxUpdatedAt, err := db.Replica.TimeBounds(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// One v0.3.x generation an hour before the LTX files, one an hour after.
	g := v3gen.New(t, 7, 4096)
	g.SetTime(ltxUpdatedAt.Add(-time.Hour))
	g.NewGeneration()
	g.Write(3)
	older := g.Files[len(g.Files)-1]
	g.SetTime(ltxUpdatedAt.Add(time.Hour))
	g.NewGeneration()
	g.Write(3)
	newer := g.Files[len(g.Files)-1]
	all := g.Files
	r := litestream.NewReplicaWithClient(nil, client)

	restore := func(t *testing.T, opt litestream.RestoreOptions) string {
		t.Helper()
		opt.OutputPath = filepath.Join(t.TempDir(), "db")
		if err := r.Restore(ctx, opt); err != nil {
			t.Fatalf("restore: %v", err)
		}
		return opt.OutputPath
	}
	isLTX := func(t *testing.T, path string) {
		t.Helper()
		if got := MustCheckRestored(t, path); got != ltxState {
			t.Fatalf("restored %q, want the LTX state %q", got, ltxState)
		}
	}
	isV3 := func(t *testing.T, path, want string) {
		t.Helper()
		if got := v3gen.MustState(t, path); got != want {
			t.Fatalf("restored %s, want v0.3.x state %s", got, want)
		}
	}

	t.Run("LTXNewer", func(t *testing.T) {
		g.Files = all[:2] // only the older generation
		g.WriteDir(client.Path())
		isLTX(t, restore(t, litestream.RestoreOptions{}))
	})
	t.Run("V3Newer", func(t *testing.T) {
		g.Files = all
		g.WriteDir(client.Path())
		isV3(t, restore(t, litestream.RestoreOptions{}), newer.State)
	})
	t.Run("TXIDAlwaysLTX", func(t *testing.T) {
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		isLTX(t, restore(t, litestream.RestoreOptions{TXID: pos.TXID}))
	})
	t.Run("TimestampBetween", func(t *testing.T) {
		// Newest files at or before: LTX's (now) beat v0.3.x's older ones.
		isLTX(t, restore(t, litestream.RestoreOptions{Timestamp: ltxUpdatedAt.Add(30 * time.Minute)}))
	})
	t.Run("TimestampBeforeLTX", func(t *testing.T) {
		isV3(t, restore(t, litestream.RestoreOptions{Timestamp: older.Time}), older.State)
	})
	t.Run("TimestampAfterNewer", func(t *testing.T) {
		isV3(t, restore(t, litestream.RestoreOptions{Timestamp: newer.Time.Add(time.Minute)}), newer.State)
	})
	t.Run("CalcRestoreTarget", func(t *testing.T) {
		updatedAt, err := r.CalcRestoreTarget(ctx, litestream.RestoreOptions{Timestamp: older.Time})
		if err != nil {
			t.Fatalf("timestamp inside v0.3.x history rejected: %v", err)
		} else if !updatedAt.Equal(newer.Time) {
			t.Fatalf("updatedAt %s, want %s", updatedAt, newer.Time)
		}
	})
}

// A v0.3.x restore killed while it rebuilt a WAL (SIGKILL, OOM, power loss)
// leaves <output>.tmp and <output>.tmp-wal behind. A new restore to the same
// output whose plan has no WAL to rebuild (here the snapshot alone) must not
// let SQLite replay that stale -wal into its snapshot when it checks it:
// that gave a later state than the one asked for, or, with a WAL of another
// generation, pages of two databases.
func TestReplica_RestoreV3_IgnoresStaleTmpWAL(t *testing.T) {
	g := v3gen.New(t, 5, 4096)
	g.NewGeneration() // snapshot of index 0
	snap := g.Files[0]
	g.Write(3)
	g.Write(4)
	r, _ := MustV3Replica(t, g)

	out := filepath.Join(t.TempDir(), "db")
	// What a restore of the latest state killed before its checkpoint
	// leaves: the snapshot and index 0's WAL rebuilt beside it.
	var wal []byte
	for _, f := range g.Files[1:] {
		wal = append(wal, f.Plain...)
	}
	if err := os.WriteFile(out+".tmp", snap.Plain, 0o644); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(out+".tmp-wal", wal, 0o644); err != nil {
		t.Fatal(err)
	}

	// Restore to the snapshot's time: the snapshot alone.
	opt := litestream.RestoreOptions{OutputPath: out, Timestamp: snap.Time}
	if err := r.RestoreV3(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if got := v3gen.MustState(t, out); got != snap.State {
		t.Fatalf("restore to the snapshot's time gave %s, want the snapshot's state %s (the latest is %s): a stale .tmp-wal was replayed", got, snap.State, g.Files[len(g.Files)-1].State)
	}
	for _, p := range []string{out + ".tmp", out + ".tmp-wal"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left after the restore: %v", p, err)
		}
	}
}

// A replica that still holds the v0.3.x backup it was migrated from, and
// LTX files written since, but no LTX snapshot created before the requested
// time (a DB replicated without a Store, whose L0 TXID 1 is the whole
// database, or one whose snapshot retention removed the older snapshots
// while lower levels still reach the time). The LTX files restore that
// time, and hold data newer than the v0.3.x backup: a restore by timestamp
// must not return the v0.3.x state of an hour before because the LTX side
// has no snapshot before the time.
func TestReplica_Restore_TimestampPrefersNewerLTXWithoutSnapshot(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)

	g := v3gen.New(t, 11, 4096)
	g.SetTime(time.Now().Add(-time.Hour))
	g.NewGeneration()
	g.Write(3)
	g.WriteDir(client.Path())
	v3State := g.State()

	for i := 0; i < 5; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(100))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := MustDump(t, app)
	ts := time.Now().Add(time.Second) // after every LTX file
	if snaps := levelFiles(t, client, litestream.SnapshotLevel); len(snaps) != 0 {
		t.Fatalf("replica has %d LTX snapshots, want none", len(snaps))
	}

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "db")
	opt.Timestamp = ts
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	if got := v3gen.MustState(t, opt.OutputPath); got == v3State {
		t.Fatalf("restore at %s returned the v0.3.x state of an hour before (%s), not the LTX state the replica holds for that time", ts.Format(time.RFC3339Nano), got)
	}
	if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}
