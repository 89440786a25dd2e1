// Example of the VFS: query a replica without restoring it, run by go test
// against the file backend. The README's VFS code is copied from it, and
// readme_test.go fails if the two drift apart.
package litestream_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// Query a replica read-only, pinned to a point in time, without restoring
// it: pages are fetched from the replica as SQLite asks for them.
func ExampleVFS() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	replicaPath := filepath.Join(dir, "replica")
	exampleReplicate(ctx, filepath.Join(dir, "app.db"), replicaPath)
	at := time.Now()

	vfs := litestream.NewVFS(file.NewReplicaClient(replicaPath), slog.Default())
	vfs.CacheSize = 16 << 20 // bytes of decoded pages kept in memory
	if err := vfs.Register(); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = vfs.Close() }() // after the pool below is closed

	// "app.db" follows the latest TXID, "app.db@000000000000002a" pins a
	// TXID, "app.db@<RFC 3339 time>" the last TXID before that time.
	name := "app.db@" + at.UTC().Format(time.RFC3339Nano)
	replica, err := sql.Open("sqlite", vfs.DSN(name))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = replica.Close() }()
	var body string
	if err := replica.QueryRowContext(ctx, `SELECT body FROM notes`).Scan(&body); err != nil {
		log.Fatal(err, vfs.LastError()) // LastError names the TXID, file or page behind "disk I/O error"
	}
	fmt.Println(body)
	// Output: hello
}
