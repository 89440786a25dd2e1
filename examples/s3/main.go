// Command s3 is a restore-on-startup example: it restores the database from
// an S3 replica if the local file is missing, then replicates it while
// writing a row every interval, until SIGINT or SIGTERM.
//
// It prints "rows N" once the database is ready (N rows restored or already
// present), then "row ID" for each row it writes.
//
// Environment:
//
//	LITESTREAM_BUCKET       bucket name (required)
//	LITESTREAM_PATH         key prefix in the bucket (default "db")
//	AWS_REGION              bucket region (default us-east-1 with an endpoint)
//	AWS_ACCESS_KEY_ID       credentials (else the SDK's default chain)
//	AWS_SECRET_ACCESS_KEY
//	LITESTREAM_S3_ENDPOINT  S3-compatible endpoint, e.g. http://127.0.0.1:9000
//
// Usage: go run ./examples/s3 [-db path] [-interval 1s]
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/s3"
)

func main() {
	dbPath := flag.String("db", "example.db", "local database path")
	interval := flag.Duration("interval", time.Second, "time between inserted rows")
	flag.Parse()
	if *interval <= 0 {
		fmt.Fprintln(os.Stderr, "-interval must be positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dbPath, *interval); err != nil {
		slog.Error("example failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dbPath string, interval time.Duration) error {
	client, err := newClient()
	if err != nil {
		return err
	}

	db := litestream.NewDB(dbPath)
	db.Replica = litestream.NewReplicaWithClient(db, client)

	// Restore before the database is opened; an empty replica is fine.
	if err := db.EnsureExists(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		// A fresh context: the final sync must run although ctx is done.
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := store.Close(closeCtx); err != nil {
			slog.Error("close store", "error", err)
		}
	}()

	sqldb, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	defer func() { _ = sqldb.Close() }()
	if _, err := sqldb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ticks (id INTEGER PRIMARY KEY, at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	var n int
	if err := sqldb.QueryRowContext(ctx, `SELECT COUNT(*) FROM ticks`).Scan(&n); err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	fmt.Println("rows", n)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			slog.Info("stopping")
			return nil
		case now := <-ticker.C:
			res, err := sqldb.ExecContext(ctx, `INSERT INTO ticks (at) VALUES (?)`, now.UTC().Format(time.RFC3339Nano))
			if err != nil {
				if ctx.Err() != nil {
					continue // stopping; the next select returns
				}
				return fmt.Errorf("insert: %w", err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			fmt.Println("row", id)
		}
	}
}

// newClient configures the S3 client from the environment.
func newClient() (*s3.ReplicaClient, error) {
	c := s3.NewReplicaClient()
	c.Bucket = os.Getenv("LITESTREAM_BUCKET")
	if c.Bucket == "" {
		return nil, fmt.Errorf("LITESTREAM_BUCKET required")
	}
	c.Path = os.Getenv("LITESTREAM_PATH")
	if c.Path == "" {
		c.Path = "db"
	}
	c.Region = os.Getenv("AWS_REGION")
	c.AccessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
	c.SecretAccessKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	if endpoint := os.Getenv("LITESTREAM_S3_ENDPOINT"); endpoint != "" {
		c.Endpoint, _ = litestream.EnsureEndpointScheme(endpoint)
		c.ForcePathStyle = true
	}
	return c, nil
}
