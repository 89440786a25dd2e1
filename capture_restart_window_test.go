// Tests of capture while SQLite is between restarting the wal-index and
// writing the new WAL header.

package litestream_test

import (
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/benbjohnson/litestream"
)

// restartWALIndex does to the -shm file what SQLite's walRestartHdr does
// when a writer (or a TRUNCATE checkpoint) restarts a fully backfilled WAL:
// salt1+1, a new salt2, mxFrame 0, nBackfill 0, read marks reset. SQLite
// writes the new WAL header only afterwards, with the writer's first frame
// (or truncates the WAL, for TRUNCATE); a writer that dies or fails in
// between leaves exactly this state until the next commit.
func restartWALIndex(t *testing.T, db *litestream.DB) {
	t.Helper()
	f, err := os.OpenFile(db.Path()+"-shm", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, 136)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	hdr := buf[:48]
	ne.PutUint32(hdr[8:], ne.Uint32(hdr[8:])+1) // iChange
	ne.PutUint32(hdr[16:], 0)                   // mxFrame
	binary.BigEndian.PutUint32(hdr[32:], binary.BigEndian.Uint32(hdr[32:])+1)
	binary.BigEndian.PutUint32(hdr[36:], 0x5eed5eed)
	s1, s2 := litestream.WALChecksum(ne, 0, 0, hdr[:40])
	ne.PutUint32(hdr[40:], s1)
	ne.PutUint32(hdr[44:], s2)
	copy(buf[48:96], hdr)
	ne.PutUint32(buf[96:], 0)  // nBackfill
	ne.PutUint32(buf[104:], 0) // aReadMark[1]
	for i := 2; i < 5; i++ {
		ne.PutUint32(buf[100+4*i:], 0xffffffff)
	}
	ne.PutUint32(buf[128:], 0) // nBackfillAttempted
	if _, err := f.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
}

// A writer killed between writing its commit frames and publishing them
// leaves valid frames past mxFrame (TestDB_Sync_IgnoresFramesPastWALIndex).
// Once the WAL is fully backfilled the next writer restarts it: the
// wal-index moves to the new generation first, the WAL file keeps the old
// header until that writer's first frame. A sync in that window finds the
// -shm describing another generation, so committedFrameLimit returns -1 and
// the sync reads the old generation to its last valid commit frame,
// orphan included: an L0 file of a state SQLite never committed.
func TestDB_Sync_OrphanFramesCapturedDuringWALIndexRestart(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 3; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModePassive); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The WAL is now fully backfilled (as a restart requires).
	var busy, logN, ckptN int
	if err := app.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logN, &ckptN); err != nil {
		t.Fatal(err)
	}
	if logN != ckptN {
		t.Fatalf("wal not fully backfilled: log %d checkpointed %d", logN, ckptN)
	}
	before, _ := db.Pos()

	// A writer dies after writing its commit frame, before publishing it.
	appendUnpublishedCommit(t, db, readWALEnd(t, db), 42)
	if v := userVersion(t, app); v != 0 {
		t.Fatalf("SQLite sees user_version %d", v)
	}
	// The next writer restarts the wal-index, then (not yet) writes the WAL header.
	restartWALIndex(t, db)
	if v := userVersion(t, app); v != 0 {
		t.Fatalf("SQLite sees user_version %d after the restart", v)
	}

	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if pos, _ := db.Pos(); pos != before {
		t.Fatalf("sync during the restart captured the old generation's unpublished frame: position %s, want %s", pos.TXID, before.TXID)
	}

	// The writer commits: the WAL gets the new generation.
	mustCommitOverUnpublished(t, db, app, client, before.TXID)
}
