// db_claim.go: one DB per database file in a process. DB.Open claims the
// file, DB.Close gives it back.

package litestream

import (
	"fmt"
	"path/filepath"
	"sync"
)

// openDBs holds the open DBs of this process by database file. Two DBs on
// one file would share its meta directory, each with its own cached
// position, and replace each other's L0 files: the second fails to open.
var openDBs = struct {
	sync.Mutex
	byFile map[string]*DB
}{byFile: make(map[string]*DB)}

// claimFile records db as the open DB of its database file, however its
// path is spelled, or fails if another DB has it. Caller holds mu.
func (db *DB) claimFile() error {
	key := canonicalPath(db.path)
	openDBs.Lock()
	defer openDBs.Unlock()
	if other := openDBs.byFile[key]; other != nil && other != db {
		return fmt.Errorf("open %s: this database file is already open through another DB in this process (path %s); use one DB per database file: two would share its local files in %s and break each other's replicas", db.path, other.path, db.metaPath)
	}
	openDBs.byFile[key], db.fileKey = db, key
	return nil
}

// releaseFile removes db's claim on its database file. Caller holds mu.
func (db *DB) releaseFile() {
	openDBs.Lock()
	defer openDBs.Unlock()
	if openDBs.byFile[db.fileKey] == db {
		delete(openDBs.byFile, db.fileKey)
	}
	db.fileKey = ""
}

// canonicalPath is path made absolute with symbolic links resolved, in its
// directory at least when the file does not exist yet.
func canonicalPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		return resolved
	} else if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}
