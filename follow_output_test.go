// Internal tests of the follow output's transaction handling.
package litestream

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// begin marks the transaction open before it prepares its page writer; a
// failure in between (reading page 1, preparing the statement, a context
// ended by stopping the follower) leaves no statement. The rollback that
// follows must not panic, and must end the transaction.
func TestFollowOutput_RollbackBeforeStatementPrepared(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "out.db")
	db, err := sql.Open("sqlite", sqliteFileURI(path, "_pragma=journal_mode(wal)"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	o, err := openFollowOutput(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o.close() }()
	if _, err := o.conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	o.tx = true // what begin leaves when it fails before preparing o.stmt
	o.rollback()
	if err := o.begin(ctx); err != nil {
		t.Fatalf("begin after the rollback: %v", err)
	}
	o.rollback()
}
