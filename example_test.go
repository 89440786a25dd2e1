// Examples of the library's use, run by go test against the file backend.
// The README's Go code is copied from these functions, and readme_test.go
// fails if the two drift apart.
package litestream_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	_ "modernc.org/sqlite"
)

// Replicate a database to a directory, and acknowledge a write once it is on
// the replica.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	dbPath, replicaPath := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")

	db := litestream.NewDB(dbPath)
	client := file.NewReplicaClient(replicaPath)
	replica := litestream.NewReplicaWithClient(db, client)
	db.Replica = replica
	client.Replica = replica            // optional: replica files copy the database's owner and mode
	replica.Leaser = client.NewLeaser() // one writer per replica: see "One writer per replica"

	// Restore first if the database is missing (no-op if it exists or the
	// replica is empty).
	if err := db.EnsureExists(ctx); err != nil {
		log.Fatal(err)
	}

	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		log.Fatal(err)
	}
	defer store.Close(context.Background()) // final sync and upload

	// The application uses its own database/sql pool, in WAL mode and with a
	// busy timeout: the library writes too (its tables, checkpoints), and
	// without one a write that meets its lock fails with "database is locked".
	app, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()

	if _, err := app.ExecContext(ctx, `CREATE TABLE notes (body TEXT)`); err != nil {
		log.Fatal(err)
	}
	if _, err := app.ExecContext(ctx, `INSERT INTO notes VALUES ('hello')`); err != nil {
		log.Fatal(err)
	}
	if err := db.WaitReplicated(ctx); err != nil { // returns once the insert is on the replica
		log.Fatal(err)
	}
	fmt.Println("replicated")
	// Output: replicated
}

// Restore the latest state of a replica into a new file. Restoring needs no
// local database: the replica is built with a nil DB.
func ExampleReplica_Restore() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	replicaPath := filepath.Join(dir, "replica")
	exampleReplicate(ctx, filepath.Join(dir, "app.db"), replicaPath)

	client := file.NewReplicaClient(replicaPath)
	replica := litestream.NewReplicaWithClient(nil, client)

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(dir, "restored.db") // must not exist
	opt.IntegrityCheck = litestream.IntegrityCheckQuick
	// opt.TXID = 0x2a or opt.Timestamp = t restores an earlier state.
	if err := replica.Restore(ctx, opt); err != nil {
		log.Fatal(err) // errors.Is(err, litestream.ErrTxNotAvailable) when out of reach
	}

	restored, err := sql.Open("sqlite", "file:"+opt.OutputPath)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = restored.Close() }()
	var body string
	if err := restored.QueryRowContext(ctx, `SELECT body FROM notes`).Scan(&body); err != nil {
		log.Fatal(err)
	}
	fmt.Println(body)
	// Output: hello
}

// Build a client from a replica URL. The backend's package must be imported
// for its scheme to be known.
func ExampleNewReplicaClientFromURL() {
	client, err := litestream.NewReplicaClientFromURL("file:///var/lib/replica")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(client.Type())

	_, err = litestream.NewReplicaClientFromURL("s3://my-bucket/app")
	fmt.Println(err)
	// Output:
	// file
	// unsupported replica URL scheme: "s3": the backend is not linked in; add import _ "github.com/benbjohnson/litestream/s3" to the program
}

// exampleReplicate writes one row to a new database at dbPath and
// replicates it to replicaPath.
func exampleReplicate(ctx context.Context, dbPath, replicaPath string) {
	db := litestream.NewDB(dbPath)
	db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(replicaPath))
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		log.Fatal(err)
	}
	app, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE notes (body TEXT)`, `INSERT INTO notes VALUES ('hello')`} {
		if _, err := app.ExecContext(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
	if err := db.WaitReplicated(ctx); err != nil {
		log.Fatal(err)
	}
	if err := app.Close(); err != nil {
		log.Fatal(err)
	}
	if err := store.Close(ctx); err != nil {
		log.Fatal(err)
	}
}
