// Tests of compaction and of retention around it.
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

// A backlog larger than one merge's inputs is compacted into several
// contiguous files, never holding more inputs open than the cap, and the
// level restores on its own.
func TestCompactor_Compact_Backlog(t *testing.T) {
	litestream.SetMaxCompactionInputs(t, 10)
	db, app, client := MustOpenDB(t, 4096)
	ctx := context.Background()
	for i := range 25 {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		} else if err := db.Replica.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l0 := L0TXIDs(t, client)
	if len(l0) < 21 {
		t.Fatalf("want more than two merges' worth of L0 files, got %d", len(l0))
	}

	counting := &testClient{ReplicaClient: client}
	info, err := litestream.NewCompactor(counting, nil).Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	} else if info.MaxTXID != l0[len(l0)-1] {
		t.Fatalf("last L1 file ends at %s, want %s", info.MaxTXID, l0[len(l0)-1])
	}
	if most := counting.mostOpen.Load(); most > 10 {
		t.Fatalf("%d inputs open at once, cap 10", most)
	} else if open := counting.open.Load(); open != 0 {
		t.Fatalf("%d inputs left open", open)
	}

	l1 := levelFiles(t, client, 1)
	if want := (len(l0) + 9) / 10; len(l1) != want {
		t.Fatalf("%d L1 files, want %d", len(l1), want)
	}
	for i, f := range l1 {
		if f.MaxTXID-f.MinTXID+1 > 10 {
			t.Fatalf("L1 %s-%s merges more than 10 files", f.MinTXID, f.MaxTXID)
		} else if want := l0[0]; i == 0 && f.MinTXID != want {
			t.Fatalf("first L1 file starts at %s, want %s", f.MinTXID, want)
		} else if i > 0 && f.MinTXID != l1[i-1].MaxTXID+1 {
			t.Fatalf("L1 %s-%s does not follow %s", f.MinTXID, f.MaxTXID, l1[i-1].MaxTXID)
		}
	}

	// Restore from L1 alone.
	if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, app); got != want {
		t.Fatalf("restored from L1:\n%s\nwant:\n%s", got, want)
	}
}

// MustWriteAndUpload commits a row and uploads the L0 file it makes,
// returning the new TXID.
func MustWriteAndUpload(t testing.TB, db *litestream.DB, app *sql.DB) ltx.TXID {
	t.Helper()
	return mustExecReplicated(t, db, app, `INSERT INTO t (v, pad) VALUES (1, randomblob(500))`)
}

// An L0 file missing from a listing (an eventually consistent backend, a
// write acknowledged late) stops compaction before it: L1 never skips the
// TXID, and once the file is listed compaction resumes from it, so every
// TXID restores.
func TestCompactor_Compact_FileMissingFromListing(t *testing.T) {
	ctx := context.Background()
	var fc *faultclient.Client
	db, app, inner := MustOpenDBWrapped(t, 4096, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		fc = faultclient.New(c, faultclient.Config{})
		return fc
	})
	for range 3 {
		MustWriteAndUpload(t, db, app)
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	l1 := levelFiles(t, inner, 1)
	compacted := l1[len(l1)-1].MaxTXID

	late := MustWriteAndUpload(t, db, app)
	for range 2 {
		MustWriteAndUpload(t, db, app)
	}
	fc.Hide(0, late, late)
	if info, err := db.Compact(ctx, 1); !errors.Is(err, litestream.ErrCompactionGap) {
		t.Fatalf("compaction past hidden L0 %s: info %+v, err %v; want ErrCompactionGap", late, info, err)
	}
	if got := levelFiles(t, inner, 1); len(got) != len(l1) {
		t.Fatalf("L1 has %s with L0 %s unlisted, want %s", rangesOf(got), late, rangesOf(l1))
	}

	fc.Unhide(0, late, late)
	info, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	} else if info.MinTXID != compacted+1 {
		t.Fatalf("compaction resumed at %s, want %s", info.MinTXID, compacted+1)
	}
	pos, _ := db.Pos()
	for txid := ltx.TXID(1); txid <= pos.TXID; txid++ {
		MustCheckRestored(t, MustRestore(t, db.Replica, txid))
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// L0 retention deletes an L0 file only when a contiguous run of L1 files
// covers it: an L0 file inside an L1 gap is the only copy of its TXID.
func TestCompactor_EnforceL0Retention_KeepsFileInL1Gap(t *testing.T) {
	ctx := context.Background()
	client := file.NewReplicaClient(t.TempDir())
	old := time.Now().Add(-time.Hour)
	for txid := ltx.TXID(1); txid <= 6; txid++ {
		MustWriteLTX(t, client, 0, txid, txid, clienttest.MustLTX(t, 4096, txid, txid, 1, old))
	}
	MustWriteLTX(t, client, 1, 1, 3, clienttest.MustLTX(t, 4096, 1, 3, 1, old))
	MustWriteLTX(t, client, 1, 5, 6, clienttest.MustLTX(t, 4096, 5, 6, 1, old))

	if err := litestream.NewCompactor(client, nil).EnforceL0Retention(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := L0TXIDs(t, client); !slices.Equal(got, []ltx.TXID{4, 6}) {
		t.Fatalf("L0 after retention: %v, want [4 6] (4 in the L1 gap, 6 the newest)", got)
	}
}

// L0 retention never leaves a kept L0 file unrestorable by its TXID: when
// some of an L1 file's L0 files are still recent, the old ones before them
// stay too, since no file would end where the kept ones begin.
func TestCompactor_EnforceL0Retention_KeepsKeptTXIDsRestorable(t *testing.T) {
	ctx := context.Background()
	old, recent := time.Now().Add(-time.Hour), time.Now()
	for _, tt := range []struct {
		name   string
		l1     [][2]ltx.TXID
		recent ltx.TXID // L0 files from this TXID on are recent
		want   []ltx.TXID
	}{
		{"OneL1FileHalfRecent", [][2]ltx.TXID{{1, 6}}, 4, []ltx.TXID{1, 2, 3, 4, 5, 6}},
		{"L1BoundaryBeforeRecent", [][2]ltx.TXID{{1, 3}, {4, 6}}, 5, []ltx.TXID{4, 5, 6}},
		{"L1BoundaryAtRecent", [][2]ltx.TXID{{1, 3}, {4, 6}}, 4, []ltx.TXID{4, 5, 6}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := file.NewReplicaClient(t.TempDir())
			for txid := ltx.TXID(1); txid <= 6; txid++ {
				ts := old
				if txid >= tt.recent {
					ts = recent
				}
				MustWriteLTX(t, client, 0, txid, txid, clienttest.MustLTX(t, 4096, txid, txid, 1, ts))
			}
			for _, r := range tt.l1 {
				MustWriteLTX(t, client, 1, r[0], r[1], clienttest.MustLTX(t, 4096, r[0], r[1], 1, old))
			}
			if err := litestream.NewCompactor(client, nil).EnforceL0Retention(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
			got := L0TXIDs(t, client)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("L0 after retention: %v, want %v", got, tt.want)
			}
			for _, txid := range got {
				if _, err := litestream.CalcRestorePlan(ctx, client, txid, time.Time{}, nil); err != nil {
					t.Errorf("kept L0 TXID %s cannot be restored: %v", txid, err)
				}
			}
		})
	}
}

// An L0 file before L1's first file, which started from a snapshot (an
// upload again of a lost file that raced the first compaction), is deleted
// like the others once old when a snapshot covers it, and kept without one.
func TestCompactor_EnforceL0Retention_FileBeforeL1CoveredBySnapshot(t *testing.T) {
	ctx := context.Background()
	old := time.Now().Add(-time.Hour)
	for _, snapshot := range []bool{true, false} {
		t.Run(fmt.Sprintf("snapshot=%v", snapshot), func(t *testing.T) {
			client := file.NewReplicaClient(t.TempDir())
			for _, txid := range []ltx.TXID{1, 5, 6} {
				MustWriteLTX(t, client, 0, txid, txid, clienttest.MustLTX(t, 4096, txid, txid, 1, old))
			}
			MustWriteLTX(t, client, 1, 2, 4, clienttest.MustLTX(t, 4096, 2, 4, 1, old))
			want := []ltx.TXID{1, 5, 6}
			if snapshot {
				MustWriteLTX(t, client, litestream.SnapshotLevel, 1, 3, clienttest.MustLTX(t, 4096, 1, 3, 1, old))
				want = []ltx.TXID{5, 6}
			}
			if err := litestream.NewCompactor(client, nil).EnforceL0Retention(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := L0TXIDs(t, client); !slices.Equal(got, want) {
				t.Fatalf("L0 after retention: %v, want %v", got, want)
			}
		})
	}
}

// MustWriteLTX writes b as a replica file.
func MustWriteLTX(t testing.TB, client litestream.ReplicaClient, level int, minTXID, maxTXID ltx.TXID, b []byte) {
	t.Helper()
	if _, err := client.WriteLTXFile(context.Background(), level, minTXID, maxTXID, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// rangesOf formats files as "min-max,…" for messages.
func rangesOf(a []*ltx.FileInfo) string {
	s := make([]string, len(a))
	for i, info := range a {
		s[i] = fmt.Sprintf("%d-%d", info.MinTXID, info.MaxTXID)
	}
	return strings.Join(s, ",")
}

// Retention below a snapshot keeps the files of a level that the level
// above has not compacted yet, so that its next compaction has no gap.
func TestCompactor_EnforceRetentionByTXID_KeepsUncompacted(t *testing.T) {
	ctx := context.Background()
	client := file.NewReplicaClient(t.TempDir())
	now := time.Now()
	for _, r := range [][2]ltx.TXID{{1, 3}, {4, 6}, {7, 9}} {
		MustWriteLTX(t, client, 1, r[0], r[1], clienttest.MustLTX(t, 4096, r[0], r[1], 1, now))
	}
	MustWriteLTX(t, client, 2, 1, 3, clienttest.MustLTX(t, 4096, 1, 3, 1, now))
	MustWriteLTX(t, client, 9, 1, 9, clienttest.MustLTX(t, 4096, 1, 9, 1, now))

	c := litestream.NewCompactor(client, discardLogger)
	if err := c.EnforceRetentionByTXID(ctx, 1, 9); err != nil {
		t.Fatal(err)
	}
	if got, want := rangesOf(levelFiles(t, client, 1)), "4-6,7-9"; got != want {
		t.Fatalf("L1 after retention: %s, want %s", got, want)
	}
	info, err := c.Compact(ctx, 2)
	if err != nil {
		t.Fatal(err)
	} else if info.MinTXID != 4 || info.MaxTXID != 9 {
		t.Fatalf("L2 compaction wrote %s-%s, want 4-9", info.MinTXID, info.MaxTXID)
	}
}

// ValidateChain reports TXIDs after the oldest snapshot that no file of
// levels 0-8 covers, whichever level has the files around the hole.
func TestReplica_ValidateChain(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name  string
		files [][3]int // level, min, max
		want  string   // messages' first CurrFile ranges, "" for none
	}{
		{"Dense", [][3]int{{0, 1, 1}, {0, 2, 2}, {1, 1, 2}, {0, 3, 3}}, ""},
		{"AcrossLevels", [][3]int{{1, 1, 3}, {0, 4, 4}, {2, 1, 3}, {0, 5, 5}}, ""},
		{"L1Gap", [][3]int{{1, 1, 3}, {1, 5, 6}}, "5-6"},
		{"GapFilledByL0", [][3]int{{1, 1, 3}, {0, 4, 4}, {1, 5, 6}}, ""},
		{"NoStart", [][3]int{{0, 2, 2}, {0, 3, 3}}, "2-2"},
		{"BelowSnapshotIgnored", [][3]int{{9, 1, 5}, {0, 1, 1}, {0, 5, 5}, {0, 6, 6}}, ""},
		{"AfterSnapshot", [][3]int{{9, 1, 5}, {0, 5, 5}, {0, 7, 7}}, "7-7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := file.NewReplicaClient(t.TempDir())
			for _, f := range tt.files {
				lvl, lo, hi := f[0], ltx.TXID(f[1]), ltx.TXID(f[2])
				MustWriteLTX(t, client, lvl, lo, hi, clienttest.MustLTX(t, 4096, lo, hi, 1, now))
			}
			errs, err := litestream.NewReplicaWithClient(nil, client).ValidateChain(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, fmt.Sprintf("%d-%d", e.CurrFile.MinTXID, e.CurrFile.MaxTXID))
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("gaps before %v, want %q: %+v", got, tt.want, errs)
			}
		})
	}
}

// A compaction into a level started while another into it uploads (the
// program's db.Compact beside the Store's monitor) waits for it instead of
// writing an overlapping file, so the next level still compacts.
func TestCompactor_Compact_OneAtATimePerLevel(t *testing.T) {
	ctx := context.Background()
	var db *litestream.DB
	var app *sql.DB
	listedL0 := make(chan struct{}, 16)
	second := make(chan error, 1)
	var started atomic.Bool
	db, app, client := MustOpenDBWrapped(t, 4096, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		tc := &testClient{ReplicaClient: c}
		tc.onList = func(level int) error {
			if level == 0 {
				listedL0 <- struct{}{}
			}
			return nil
		}
		tc.onWrite = func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
			if level == 1 && started.CompareAndSwap(false, true) {
				mustInsert(t, app, 99) // one more L0 file for the second to find
				if err := db.Sync(ctx); err != nil {
					t.Error(err)
				}
				if err := db.Replica.Sync(ctx); err != nil {
					t.Error(err)
				}
				for len(listedL0) > 0 {
					<-listedL0
				}
				go func() { _, err := db.Compact(ctx, 1); second <- err }()
				// Unserialized, the second compaction lists L0 now, before
				// this file is written; serialized, it cannot.
				select {
				case <-listedL0:
				case <-time.After(time.Second):
				}
			}
			return write(r)
		}
		return tc
	})
	mustInsertReplicated(t, db, app, 0, 3)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil && !errors.Is(err, litestream.ErrNoCompaction) {
		t.Fatalf("second compaction: %v", err)
	}
	l1 := levelFiles(t, client, 1)
	for i := 1; i < len(l1); i++ {
		if l1[i].MinTXID != l1[i-1].MaxTXID+1 {
			t.Fatalf("L1 files overlap or leave a gap: %s-%s then %s-%s", l1[i-1].MinTXID, l1[i-1].MaxTXID, l1[i].MinTXID, l1[i].MaxTXID)
		}
	}
	if _, err := db.Compact(ctx, 2); err != nil {
		t.Fatalf("compaction into L2 after two into L1: %v", err)
	}
}

// A clock stepped back between commits leaves L0 files whose times do not
// rise with their TXIDs. A compacted file must take the latest of them, the
// time of its newest commit, or a restore to a time before that commit
// would take the file, and the commit with it.
func TestCompactor_Compact_DatedByLatestInput(t *testing.T) {
	ctx := context.Background()
	client := file.NewReplicaClient(t.TempDir())
	t0 := time.Now().Truncate(time.Millisecond)
	for i, ts := range []time.Time{t0, t0.Add(2 * time.Second), t0.Add(time.Second)} { // stepped back
		txid := ltx.TXID(i + 1)
		MustWriteLTX(t, client, 0, txid, txid, clienttest.MustLTX(t, 4096, txid, txid, 1, ts))
	}
	info, err := litestream.NewCompactor(client, nil).Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := client.OpenLTXFile(ctx, 1, info.MinTXID, info.MaxTXID, 0, ltx.HeaderSize)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got, want := time.UnixMilli(hdr.Timestamp), t0.Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("L1 %s-%s dated %s, want its newest commit's %s", info.MinTXID, info.MaxTXID, got, want)
	}
}
