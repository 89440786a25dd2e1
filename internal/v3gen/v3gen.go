// Package v3gen writes Litestream v0.3.x backups for tests. It drives a real
// SQLite database in WAL mode and copies what v0.3.x copied: the database
// file as a snapshot and each commit's new WAL bytes as a segment, LZ4
// framed and, with age recipients, then age-encrypted, under
// generations/<id>/{snapshots,wal}/. Every file records the database state
// (a digest of its rows) that restoring up to that file must give.
package v3gen

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/pierrec/lz4/v4"
	_ "modernc.org/sqlite"

	"github.com/benbjohnson/litestream"
)

// File is one file of the backup, in the order it was written.
type File struct {
	Path       string // slash-separated, relative to the replica root
	Data       []byte // stored bytes
	Plain      []byte // contents once decrypted and decompressed
	Generation string
	Index      int
	Offset     int64 // WAL segments only
	Snapshot   bool
	Time       time.Time // when v0.3.x would have written it
	State      string    // database state once this file is applied
}

// Generator builds one database's v0.3.x backup history.
type Generator struct {
	t          testing.TB
	rng        *rand.Rand
	recipients []age.Recipient
	dbPath     string
	db         *sql.DB
	now        time.Time

	generation string
	index      int
	walOffset  int64
	nextID     int

	Files []File
}

// New returns a generator whose database has the given page size, seeded
// for its random rows and generation names. With recipients, files are
// age-encrypted as v0.3.x's "age: recipients:" did.
func New(t testing.TB, seed uint64, pageSize int, recipients ...age.Recipient) *Generator {
	t.Helper()
	g := &Generator{
		t:          t,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		recipients: recipients,
		dbPath:     filepath.Join(t.TempDir(), "gen.db"),
		now:        time.Date(2023, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	db, err := sql.Open("sqlite", g.dbPath)
	if err != nil {
		t.Fatalf("v3gen: open: %v", err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	t.Cleanup(func() { _ = db.Close() })
	g.db = db
	g.mustExec(fmt.Sprintf("PRAGMA page_size = %d", pageSize))
	g.mustExec("PRAGMA journal_mode = WAL")
	g.mustExec("PRAGMA wal_autocheckpoint = 0")
	g.mustExec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
	g.mustExec("PRAGMA wal_checkpoint(TRUNCATE)")
	return g
}

// NewSeeded is New seeded from the clock. It logs the seed and returns it
// for failure messages, so that a failing run can be repeated with New.
func NewSeeded(t testing.TB, pageSize int, recipients ...age.Recipient) (*Generator, uint64) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("v3gen seed %d, page size %d", seed, pageSize)
	return New(t, seed, pageSize, recipients...), seed
}

func (g *Generator) mustExec(query string, args ...any) {
	g.t.Helper()
	if _, err := g.db.Exec(query, args...); err != nil {
		g.t.Fatalf("v3gen: %s: %v", query, err)
	}
}

// SetTime sets the clock: the next file is written one second after t.
func (g *Generator) SetTime(t time.Time) { g.now = t }

// Generation returns the current generation name ("" before the first).
func (g *Generator) Generation() string { return g.generation }

// NewGeneration starts a generation, as v0.3.x did when it lost track of
// the WAL: checkpoint, new name, WAL index 0, and a snapshot.
func (g *Generator) NewGeneration() {
	g.t.Helper()
	g.mustExec("PRAGMA wal_checkpoint(TRUNCATE)")
	g.generation = fmt.Sprintf("%016x", g.rng.Uint64())
	g.index, g.walOffset = 0, 0
	g.Snapshot()
}

// Snapshot writes the database file as a snapshot at the current index.
// The file lacks the index's WAL frames so far, which a restore replays
// from the index's first segment; v0.3.x checkpointed before snapshotting,
// but a checkpoint that empties the WAL makes SQLite restart it in place
// on the next write, which this generator does not follow.
func (g *Generator) Snapshot() {
	g.t.Helper()
	data, err := os.ReadFile(g.dbPath)
	if err != nil {
		g.t.Fatalf("v3gen: read database: %v", err)
	}
	g.add(File{
		Path:       litestream.SnapshotPathV3("", g.generation, g.index),
		Generation: g.generation, Index: g.index, Snapshot: true,
	}, data)
}

// Write commits a transaction inserting, updating and deleting a few
// random rows (n inserts), then writes the WAL bytes it added as a segment.
func (g *Generator) Write(n int) {
	g.t.Helper()
	tx, err := g.db.Begin()
	if err != nil {
		g.t.Fatalf("v3gen: begin: %v", err)
	}
	for range n {
		g.nextID++
		v := make([]byte, 20+g.rng.IntN(600))
		for i := range v {
			v[i] = 'a' + byte(g.rng.IntN(26))
		}
		if _, err := tx.Exec("INSERT INTO t (id, v) VALUES (?, ?)", g.nextID, string(v)); err != nil {
			g.t.Fatalf("v3gen: insert: %v", err)
		}
	}
	if g.nextID > 1 {
		if _, err := tx.Exec("UPDATE t SET v = v || 'u' WHERE id = ?", 1+g.rng.IntN(g.nextID)); err != nil {
			g.t.Fatalf("v3gen: update: %v", err)
		}
		if _, err := tx.Exec("DELETE FROM t WHERE id = ?", 1+g.rng.IntN(g.nextID)); err != nil {
			g.t.Fatalf("v3gen: delete: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		g.t.Fatalf("v3gen: commit: %v", err)
	}

	f, err := os.Open(g.dbPath + "-wal")
	if err != nil {
		g.t.Fatalf("v3gen: open wal: %v", err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.NewSectionReader(f, g.walOffset, 1<<40))
	if err != nil {
		g.t.Fatalf("v3gen: read wal: %v", err)
	}
	g.add(File{
		Path:       litestream.WALSegmentPathV3("", g.generation, g.index, g.walOffset),
		Generation: g.generation, Index: g.index, Offset: g.walOffset,
	}, data)
	g.walOffset += int64(len(data))
}

// Checkpoint copies the WAL into the database and restarts it, which moves
// v0.3.x on to the next WAL index.
func (g *Generator) Checkpoint() {
	g.t.Helper()
	if g.walOffset == 0 {
		return
	}
	g.mustExec("PRAGMA wal_checkpoint(TRUNCATE)")
	g.index++
	g.walOffset = 0
}

func (g *Generator) add(f File, plain []byte) {
	g.t.Helper()
	g.now = g.now.Add(time.Second)
	f.Time = g.now
	f.Data = g.encode(plain)
	f.Plain = plain
	f.State = g.State()
	g.Files = append(g.Files, f)
}

// encode returns plain as v0.3.x stored it: LZ4, then age when encrypting.
func (g *Generator) encode(plain []byte) []byte {
	g.t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser = nopCloser{&buf}
	if len(g.recipients) > 0 {
		aw, err := age.Encrypt(&buf, g.recipients...)
		if err != nil {
			g.t.Fatalf("v3gen: age: %v", err)
		}
		w = aw
	}
	zw := lz4.NewWriter(w)
	if _, err := zw.Write(plain); err != nil {
		g.t.Fatalf("v3gen: lz4: %v", err)
	} else if err := zw.Close(); err != nil {
		g.t.Fatalf("v3gen: lz4: %v", err)
	} else if err := w.Close(); err != nil {
		g.t.Fatalf("v3gen: age: %v", err)
	}
	return buf.Bytes()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// State returns the digest of the generator's rows now.
func (g *Generator) State() string {
	g.t.Helper()
	s, err := state(g.db)
	if err != nil {
		g.t.Fatalf("v3gen: state: %v", err)
	}
	return s
}

// MustState returns the digest of the rows of the database at path, in the
// same form as File.State.
func MustState(t testing.TB, path string) string {
	t.Helper()
	// The path escaped as a URI's: a '?' in it would end a plain name.
	db, err := sql.Open("sqlite", "file:"+strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path))
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer func() { _ = db.Close() }()
	s, err := state(db)
	if err != nil {
		t.Fatalf("state of %s: %v", path, err)
	}
	return s
}

func state(db *sql.DB) (string, error) {
	rows, err := db.Query("SELECT id, v FROM t ORDER BY id")
	if err != nil {
		return "", err
	}
	defer func() { _ = rows.Close() }()
	h := sha256.New()
	var n int
	for rows.Next() {
		var id int
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d:%s\n", id, v)
		n++
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d rows %s", n, hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// StateAt returns the state a restore to time t must give: that of the
// last file written at or before t, or "" when there is none.
func (g *Generator) StateAt(t time.Time) string {
	var s string
	for _, f := range g.Files {
		if !f.Time.After(t) {
			s = f.State
		}
	}
	return s
}

// WriteDir writes the files under root with their times as mtimes, as a
// v0.3.x file replica would hold them.
func (g *Generator) WriteDir(root string) {
	g.t.Helper()
	for _, f := range g.Files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		} else if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			g.t.Fatal(err)
		} else if err := os.Chtimes(p, f.Time, f.Time); err != nil {
			g.t.Fatal(err)
		}
	}
}

// Build runs a standard history: gens generations, each with a snapshot,
// writes over several WAL indexes, and a snapshot in the middle of an
// index.
func (g *Generator) Build(gens int) {
	g.t.Helper()
	for range gens {
		g.NewGeneration()
		g.Write(5)
		g.Write(3)
		g.Checkpoint()
		g.Write(40) // spans many pages
		g.Snapshot()
		g.Write(2)
		g.Checkpoint()
		g.Write(1)
		g.Write(4)
	}
}

// Key joins a replica root prefix and a file path as object stores name it.
func Key(root, p string) string { return path.Join(root, p) }
