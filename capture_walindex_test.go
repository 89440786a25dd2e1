// Tests that capture stops at SQLite's wal-index: valid WAL frames that
// SQLite has not published as committed are never replicated, and are
// captured once SQLite publishes them.

package litestream_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"os"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// walEnd describes the end of a WAL's committed frames.
type walEnd struct {
	bo               binary.ByteOrder
	pageSize         int64
	salt1, salt2     uint32
	offset           int64 // end of the last commit frame
	frames           int   // frames up to offset
	chksum1, chksum2 uint32
	commit           uint32
	page1            []byte // the newest committed page 1
}

func readWALEnd(t *testing.T, db *litestream.DB) walEnd {
	t.Helper()
	wal, err := os.ReadFile(db.WALPath())
	if err != nil {
		t.Fatal(err)
	}
	var e walEnd
	e.bo = binary.LittleEndian
	if binary.BigEndian.Uint32(wal[0:]) == 0x377f0683 {
		e.bo = binary.BigEndian
	}
	e.pageSize = int64(binary.BigEndian.Uint32(wal[8:]))
	e.salt1, e.salt2 = binary.BigEndian.Uint32(wal[16:]), binary.BigEndian.Uint32(wal[20:])
	c1, c2 := binary.BigEndian.Uint32(wal[24:]), binary.BigEndian.Uint32(wal[28:])
	frameSize := litestream.WALFrameHeaderSize + e.pageSize
	var page1 []byte
	for off, i := int64(litestream.WALHeaderSize), 0; off+frameSize <= int64(len(wal)); off, i = off+frameSize, i+1 {
		fh, data := wal[off:off+litestream.WALFrameHeaderSize], wal[off+litestream.WALFrameHeaderSize:off+frameSize]
		if binary.BigEndian.Uint32(fh[8:]) != e.salt1 || binary.BigEndian.Uint32(fh[12:]) != e.salt2 {
			break
		}
		s1, s2 := litestream.WALChecksum(e.bo, c1, c2, fh[:8])
		if s1, s2 = litestream.WALChecksum(e.bo, s1, s2, data); s1 != binary.BigEndian.Uint32(fh[16:]) || s2 != binary.BigEndian.Uint32(fh[20:]) {
			break
		}
		c1, c2 = s1, s2
		if binary.BigEndian.Uint32(fh[0:]) == 1 {
			page1 = data
		}
		if commit := binary.BigEndian.Uint32(fh[4:]); commit != 0 {
			e.offset, e.frames, e.chksum1, e.chksum2, e.commit = off+frameSize, i+1, c1, c2, commit
			e.page1 = append([]byte(nil), page1...)
		}
	}
	if e.offset == 0 {
		t.Fatal("the WAL holds no commit frame")
	}
	if e.page1 == nil {
		f, err := os.Open(db.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		e.page1 = make([]byte, e.pageSize)
		if _, err := io.ReadFull(f, e.page1); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// appendUnpublishedCommit writes, after the WAL's last commit frame, a
// valid commit frame of page 1 with user_version set to version, as a
// writer does before it publishes the commit in the wal-index. It returns
// the frame's checksums.
func appendUnpublishedCommit(t *testing.T, db *litestream.DB, e walEnd, version uint32) (uint32, uint32) {
	t.Helper()
	page1 := append([]byte(nil), e.page1...)
	binary.BigEndian.PutUint32(page1[60:], version)
	frame := make([]byte, litestream.WALFrameHeaderSize+e.pageSize)
	binary.BigEndian.PutUint32(frame[0:], 1)
	binary.BigEndian.PutUint32(frame[4:], e.commit)
	binary.BigEndian.PutUint32(frame[8:], e.salt1)
	binary.BigEndian.PutUint32(frame[12:], e.salt2)
	s1, s2 := litestream.WALChecksum(e.bo, e.chksum1, e.chksum2, frame[:8])
	s1, s2 = litestream.WALChecksum(e.bo, s1, s2, page1)
	binary.BigEndian.PutUint32(frame[16:], s1)
	binary.BigEndian.PutUint32(frame[20:], s2)
	copy(frame[litestream.WALFrameHeaderSize:], page1)

	f, err := os.OpenFile(db.WALPath(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.WriteAt(frame, e.offset); err != nil {
		t.Fatal(err)
	}
	return s1, s2
}

// publishPage1Frame finishes that writer's commit of page 1 as frame
// mxFrame (in the wal-index's first hash block): it enters the frame in the
// hash table, then sets the header's mxFrame and frame checksums in both
// header copies, as SQLite's walIndexAppend and walIndexWriteHdr do.
func publishPage1Frame(t *testing.T, db *litestream.DB, mxFrame int, c1, c2 uint32) {
	t.Helper()
	const (
		hdrSize   = 136       // two header copies and the checkpoint info
		pgnoN     = 4096 - 34 // page numbers in the first hash block
		hashSlots = 2 * 4096  // u16 hash slots per block
		hashStart = hdrSize + 4*pgnoN
	)
	if mxFrame > pgnoN {
		t.Fatalf("frame %d is past the first wal-index block", mxFrame)
	}
	f, err := os.OpenFile(db.Path()+"-shm", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	ne := binary.NativeEndian
	block := make([]byte, hashStart+2*hashSlots)
	if _, err := f.ReadAt(block, 0); err != nil {
		t.Fatal(err)
	}
	ne.PutUint32(block[hdrSize+4*(mxFrame-1):], 1)
	key := (1 * 383) & (hashSlots - 1)
	for ne.Uint16(block[hashStart+2*key:]) != 0 {
		key = (key + 1) & (hashSlots - 1)
	}
	ne.PutUint16(block[hashStart+2*key:], uint16(mxFrame))
	if _, err := f.WriteAt(block[hdrSize:], hdrSize); err != nil {
		t.Fatal(err)
	}

	hdr := block[:48]
	ne.PutUint32(hdr[8:], ne.Uint32(hdr[8:])+1) // iChange
	ne.PutUint32(hdr[16:], uint32(mxFrame))
	ne.PutUint32(hdr[24:], c1)
	ne.PutUint32(hdr[28:], c2)
	s1, s2 := litestream.WALChecksum(ne, 0, 0, hdr[:40])
	ne.PutUint32(hdr[40:], s1)
	ne.PutUint32(hdr[44:], s2)
	if _, err := f.WriteAt(append(append([]byte(nil), hdr...), hdr...), 0); err != nil {
		t.Fatal(err)
	}
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A writer that dies between writing its commit frame and publishing it in
// the wal-index, or whose commit fails after the write, leaves a valid
// frame SQLite never committed and overwrites with its next commit. Sync
// must not capture it: a restore to its TXID would return a state the app
// never had.
func TestDB_Sync_IgnoresFramesPastWALIndex(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 3; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Pos()

	appendUnpublishedCommit(t, db, readWALEnd(t, db), 42)
	if v := userVersion(t, app); v != 0 {
		t.Fatalf("SQLite sees user_version %d: the frame is not unpublished", v)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if pos, _ := db.Pos(); pos != before {
		t.Fatalf("sync captured the unpublished frame: position %s, want %s", pos.TXID, before.TXID)
	}

	// SQLite's next commit overwrites the frame.
	mustCommitOverUnpublished(t, db, app, client, before.TXID)
}

// mustCommitOverUnpublished has the app commit over an unpublished frame
// that set user_version, replicates, and checks that no TXID from since on
// restores a user_version SQLite never committed, and that the latest
// restore is the app's database.
func mustCommitOverUnpublished(t *testing.T, db *litestream.DB, app *sql.DB, client litestream.ReplicaClient, since ltx.TXID) {
	t.Helper()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (100)`); err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, app); v != 0 {
		t.Fatalf("user_version %d after the next commit", v)
	}
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := db.Pos()
	for txid := since; txid <= after.TXID; txid++ {
		rdb, err := sql.Open("sqlite", "file:"+MustRestore(t, litestream.NewReplicaWithClient(nil, client), txid))
		if err != nil {
			t.Fatal(err)
		}
		if v := userVersion(t, rdb); v != 0 {
			t.Errorf("restore at TXID %s: user_version %d, a commit SQLite never made", txid, v)
		}
		_ = rdb.Close()
	}
	mustRestoreLatestMatches(t, db, client, app)
}

// A background sync woken by a commit's WAL write can run before SQLite
// publishes that commit in the wal-index; nothing then writes the WAL
// again. The monitor must look again by itself and capture the commit.
func TestDB_Monitor_CapturesCommitPublishedAfterItsWALWrite(t *testing.T) {
	db, app, client := MustOpenMonitoredDB(t, io.Discard, nil, noTimeCheckpoint)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	txid := waitTXID(t, db, 0, "the first commit")

	e := readWALEnd(t, db)
	c1, c2 := appendUnpublishedCommit(t, db, e, 7)
	waitFor(t, 30e9, "a sync that sees the unpublished frame", func() bool { return litestream.FramesPastWALIndex(db) })
	if pos, _ := db.Pos(); uint64(pos.TXID) != txid {
		t.Fatalf("the unpublished frame was captured: position %s, want %d", pos.TXID, txid)
	}

	publishPage1Frame(t, db, e.frames+1, c1, c2)
	if v := userVersion(t, app); v != 7 {
		t.Fatalf("SQLite sees user_version %d after publishing, want 7", v)
	}
	waitTXID(t, db, txid, "the commit published without a further WAL write")
	mustRestoreLatestMatches(t, db, client, app)
}

// mustRestoreLatestMatches uploads everything and checks that the latest
// restore equals the app's database.
func mustRestoreLatestMatches(t *testing.T, db *litestream.DB, client litestream.ReplicaClient, app *sql.DB) {
	t.Helper()
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0))
	if want := MustDump(t, app); got != want {
		t.Fatalf("latest restore %s, app %s", got, want)
	}
}
