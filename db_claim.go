// db_claim.go: one DB per database file, and one per replica, in a
// process. DB.Open claims both, DB.Close gives them back.

package litestream

import (
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
)

// openDBs holds the open DBs of this process by database file and by
// replica. Two DBs on one file would share its meta directory, each with
// its own cached position, and replace each other's L0 files; two on one
// replica would interleave their TXIDs in it and neither could be
// restored. The second fails to open.
var openDBs = struct {
	sync.Mutex
	byFile    map[string]*DB
	byReplica map[string]*DB
}{byFile: make(map[string]*DB), byReplica: make(map[string]*DB)}

// claimFile records db as the open DB of its database file, however its
// path is spelled, and of its replica, or fails if another DB has either.
// Caller holds mu.
func (db *DB) claimFile() error {
	key, replicaKey := canonicalPath(db.path), db.replicaKey()
	openDBs.Lock()
	defer openDBs.Unlock()
	if other := openDBs.byFile[key]; other != nil && other != db {
		return fmt.Errorf("open %s: this database file is already open through another DB in this process (path %s); use one DB per database file: two would share its local files in %s and break each other's replicas", db.path, other.path, db.metaPath)
	}
	if other := openDBs.byReplica[replicaKey]; replicaKey != "" && other != nil && other != db {
		return fmt.Errorf("open %s: %s already replicates DB %s in this process; give each DB its own replica client and path: two DBs in one replica interleave their transactions and neither can be restored", db.path, replicaName(db.Replica.Client), other.path)
	}
	openDBs.byFile[key], db.fileKey = db, key
	if replicaKey != "" {
		openDBs.byReplica[replicaKey], db.replicaKeyHeld = db, replicaKey
	}
	return nil
}

// releaseFile removes db's claims. Caller holds mu.
func (db *DB) releaseFile() {
	openDBs.Lock()
	defer openDBs.Unlock()
	if openDBs.byFile[db.fileKey] == db {
		delete(openDBs.byFile, db.fileKey)
	}
	if openDBs.byReplica[db.replicaKeyHeld] == db {
		delete(openDBs.byReplica, db.replicaKeyHeld)
	}
	db.fileKey, db.replicaKeyHeld = "", ""
}

// replicaKey names db's replica for the claim: a file replica by its
// directory, any other by its client value, since a location string may
// omit the endpoint. It is "" (no claim) when a lease decides which DB
// writes, as a standby waiting on the same replica in one process does.
func (db *DB) replicaKey() string {
	c := db.Replica.Client
	if db.Replica.Leaser != nil {
		return ""
	}
	if c.Type() == "file" {
		if p, ok := c.(interface{ Path() string }); ok && p.Path() != "" {
			return "file:" + canonicalPath(p.Path())
		}
	}
	if v := reflect.ValueOf(c); v.Kind() == reflect.Pointer {
		return fmt.Sprintf("client:%T:%x", c, v.Pointer())
	}
	return ""
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
