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
	"time"

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

// Restore the state of an earlier moment: the replica's files carry their
// creation time, and Restore uses only the files created before
// opt.Timestamp.
func ExampleReplica_Restore_timestamp() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	replicaPath := filepath.Join(dir, "replica")
	db, app, closeApp := exampleOpen(ctx, filepath.Join(dir, "app.db"), replicaPath)
	defer closeApp()

	exampleExec(ctx, app, `INSERT INTO notes VALUES ('kept')`)
	if err := db.WaitReplicated(ctx); err != nil {
		log.Fatal(err)
	}
	exampleNextMillisecond() // file times have millisecond precision
	before := time.Now()
	exampleNextMillisecond()
	exampleExec(ctx, app, `INSERT INTO notes VALUES ('too late')`)
	if err := db.WaitReplicated(ctx); err != nil {
		log.Fatal(err)
	}

	replica := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(replicaPath))
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(dir, "earlier.db")
	opt.Timestamp = before
	if err := replica.Restore(ctx, opt); err != nil {
		log.Fatal(err)
	}
	fmt.Println(exampleNotes(ctx, opt.OutputPath))
	// Output: [kept]
}

// Restore on startup: a program on a new machine, or after losing its disk,
// gets its database back from the replica before opening it, then goes on
// replicating where the replica left off.
func ExampleDB_EnsureExists() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	replicaPath := filepath.Join(dir, "replica")
	exampleReplicate(ctx, filepath.Join(dir, "app.db"), replicaPath) // on the old machine

	dbPath := filepath.Join(dir, "new-machine", "app.db") // does not exist yet
	db := litestream.NewDB(dbPath)
	db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(replicaPath))
	if err := db.EnsureExists(ctx); err != nil { // restores, creating the directory
		log.Fatal(err)
	}
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	fmt.Println(exampleNotes(ctx, dbPath))
	// Output: [hello]
}

// Acknowledge a write only once it is on the replica: WaitReplicated
// returns when everything committed before the call has been uploaded, and
// concurrent callers share one sync and one upload.
func ExampleDB_WaitReplicated() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	db, app, closeApp := exampleOpen(ctx, filepath.Join(dir, "app.db"), filepath.Join(dir, "replica"))
	defer closeApp()

	exampleExec(ctx, app, `INSERT INTO notes VALUES ('order 1')`)
	if err := db.WaitReplicated(ctx); err != nil {
		log.Fatal(err) // not acknowledged: the write may be lost with the disk
	}
	status, err := db.SyncStatus(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("replica has the local position:", status.InSync)
	// Output: replica has the local position: true
}

// Keep a read-only copy up to date: Restore with Follow applies each new
// replica file to the output as one transaction, until ctx ends. Readers
// may keep the output open; ReadTXIDFile says how far it has got.
func ExampleReplica_Restore_follow() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	replicaPath := filepath.Join(dir, "replica")
	db, app, closeApp := exampleOpen(ctx, filepath.Join(dir, "app.db"), replicaPath)
	defer closeApp()
	exampleExec(ctx, app, `INSERT INTO notes VALUES ('first')`)
	if err := db.WaitReplicated(ctx); err != nil {
		log.Fatal(err)
	}

	followCtx, stopFollowing := context.WithCancel(ctx)
	followed := make(chan error, 1)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(dir, "follower.db")
	opt.Follow = true
	opt.FollowInterval = 10 * time.Millisecond // default 1s
	go func() {
		replica := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(replicaPath))
		followed <- replica.Restore(followCtx, opt)
	}()

	exampleExec(ctx, app, `INSERT INTO notes VALUES ('second')`)
	if err := db.WaitReplicated(ctx); err != nil {
		log.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		log.Fatal(err)
	}
	for { // wait for the follower to apply the second insert
		if txid, err := litestream.ReadTXIDFile(opt.OutputPath); err != nil {
			log.Fatal(err)
		} else if txid >= pos.TXID {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(exampleNotes(ctx, opt.OutputPath))

	stopFollowing()
	if err := <-followed; err != nil { // nil once ctx ends
		log.Fatal(err)
	}
	// Output: [first second]
}

// exampleOpen replicates a new database at dbPath, with an empty notes
// table, to replicaPath, and opens the application's pool on it.
func exampleOpen(ctx context.Context, dbPath, replicaPath string) (*litestream.DB, *sql.DB, func()) {
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
	exampleExec(ctx, app, `CREATE TABLE notes (body TEXT)`)
	return db, app, func() {
		if err := app.Close(); err != nil {
			log.Fatal(err)
		}
		if err := store.Close(ctx); err != nil {
			log.Fatal(err)
		}
	}
}

func exampleExec(ctx context.Context, app *sql.DB, query string) {
	if _, err := app.ExecContext(ctx, query); err != nil {
		log.Fatal(err)
	}
}

// exampleNotes reads the notes of the database at path, read-only.
func exampleNotes(ctx context.Context, path string) []string {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	rows, err := db.QueryContext(ctx, `SELECT body FROM notes ORDER BY rowid`)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var notes []string
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			log.Fatal(err)
		}
		notes = append(notes, body)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	return notes
}

// exampleNextMillisecond waits for the wall clock to enter the next
// millisecond, the precision of replica file times.
func exampleNextMillisecond() {
	for ms := time.Now().UnixMilli(); time.Now().UnixMilli() == ms; {
		time.Sleep(100 * time.Microsecond)
	}
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

// Learn of replication progress without polling: every L0 file written and
// uploaded, compactions, snapshots, stalls and recoveries.
func ExampleDB_Subscribe() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "litestream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	dbPath := filepath.Join(dir, "app.db")
	db := litestream.NewDB(dbPath)
	db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(filepath.Join(dir, "replica")))
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		log.Fatal(err)
	}
	defer store.Close(context.Background())

	uploaded := make(chan litestream.Event, 16)
	sub := db.Subscribe(0) // or store.Subscribe(0) for every database of a Store
	defer sub.Close()
	go func() {
		for e := range sub.C {
			switch e.Type {
			case litestream.EventUploaded: // e.MaxTXID is on the replica
				select {
				case uploaded <- e:
				default: // never block the subscription
				}
			case litestream.EventStalled, litestream.EventRecovered:
				log.Println(e.DB, e.Type, e.Err)
			}
		}
	}()

	app, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	if _, err := app.ExecContext(ctx, `CREATE TABLE notes (body TEXT)`); err != nil {
		log.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		log.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		log.Fatal(err)
	}
	for e := range uploaded {
		if e.MaxTXID == pos.TXID {
			break
		}
	}
	fmt.Println("the table is on the replica")
	// Output: the table is on the replica
}
