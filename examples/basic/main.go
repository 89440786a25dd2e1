// Command basic replicates a SQLite database to a local directory.
//
// It creates myapp.db and replica/ in the working directory, writes a row
// every 2 seconds, and on Ctrl+C stops cleanly, flushing the replica.
// Restore it with litestream.Replica.Restore, or run it again to continue.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	_ "modernc.org/sqlite"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	const dbPath = "myapp.db"
	db := litestream.NewDB(dbPath)
	client := file.NewReplicaClient("replica")
	replica := litestream.NewReplicaWithClient(db, client)
	db.Replica = replica
	client.Replica = replica

	// Restore from the replica if the database is missing.
	if err := db.EnsureExists(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := store.Close(context.Background()); err != nil {
			slog.Error("close store", "error", err)
		}
	}()

	app, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer func() { _ = app.Close() }()
	if _, err := app.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL)`); err != nil {
		return err
	}

	fmt.Println("replicating myapp.db to ./replica; Ctrl+C to stop")
	ticker := time.NewTicker(2 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("stopping")
			return nil
		case <-ticker.C:
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		res, err := app.ExecContext(ctx, `INSERT INTO events (created_at) VALUES (?)`, now)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		fmt.Printf("row %d %s\n", id, now)
	}
}
