package litestream

import "os"

// DB tracks one SQLite database and writes its WAL changes to L0 LTX files.
type DB struct {
	path     string
	fileInfo os.FileInfo
	dirInfo  os.FileInfo
}

// NewDB returns a DB for the database at path. It does no I/O.
func NewDB(path string) *DB { return &DB{path: path} }

// Path returns the database path.
func (db *DB) Path() string { return db.path }

// FileInfo returns the database file's info, cached at init; nil before.
func (db *DB) FileInfo() os.FileInfo { return db.fileInfo }

// DirInfo returns the database directory's info, cached at init; nil before.
func (db *DB) DirInfo() os.FileInfo { return db.dirInfo }
