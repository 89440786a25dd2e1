// Tests that an idle database stays idle: no checkpoint writes the frame
// that wakes the next one.

package litestream_test

import (
	"context"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
)

// With a long app reader, the size-based PASSIVE checkpoint cannot
// backfill the WAL. A _litestream_seq write after it would append a frame
// whose capture wakes the monitor, whose sync finds the WAL still over
// MinCheckpointPageN and checkpoints again: an idle database must not
// write L0 files for as long as the reader stays.
func TestDB_Monitor_IdleWithLongReaderStaysIdle(t *testing.T) {
	db, _, insert := openIdleDB(t, 10*time.Millisecond, func(db *litestream.DB) {
		db.MinCheckpointPageN = 10
		db.CheckpointInterval = 0
	})
	insert(0)
	waitTXID(t, db, 0, "first sync")

	// A long reader in another connection.
	rd := MustOpenApp(t, db.Path(), 4096)
	conn, err := rd.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(context.Background(), `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 30; i++ { // commits past the reader's mark, over MinCheckpointPageN
		insert(i)
	}
	time.Sleep(500 * time.Millisecond)
	p1, _ := db.Pos()
	time.Sleep(2 * time.Second)
	p2, _ := db.Pos()
	t.Logf("p1 %s p2 %s", p1.TXID, p2.TXID)
	if d := p2.TXID - p1.TXID; d > 2 {
		t.Fatalf("idle database wrote %d L0 files in 2s (TXID %s -> %s) while a reader was open", d, p1.TXID, p2.TXID)
	}
	_, _ = conn.ExecContext(context.Background(), `ROLLBACK`)
}

// MinCheckpointPageN 1 is valid ("must be positive"). Each PASSIVE
// checkpoint's _litestream_seq write leaves one frame in the restarted WAL,
// which is again one page: an idle database must not checkpoint and write
// an L0 file at every monitor interval for ever.
func TestDB_Monitor_IdleWithMinCheckpointPageN1StaysIdle(t *testing.T) {
	db, _, insert := openIdleDB(t, 10*time.Millisecond, func(db *litestream.DB) {
		db.MinCheckpointPageN = 1
		db.CheckpointInterval = 0
	})
	insert(0)
	waitTXID(t, db, 0, "first sync")
	time.Sleep(500 * time.Millisecond)
	p1, _ := db.Pos()
	time.Sleep(2 * time.Second)
	p2, _ := db.Pos()
	t.Logf("p1 %s p2 %s", p1.TXID, p2.TXID)
	if d := p2.TXID - p1.TXID; d > 2 {
		t.Fatalf("idle database wrote %d L0 files in 2s (TXID %s -> %s)", d, p1.TXID, p2.TXID)
	}
}
