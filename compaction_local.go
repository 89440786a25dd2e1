// compaction_local.go keeps a local copy of each compacted file that a
// higher level will merge again, so that compaction reads its inputs from
// disk instead of downloading them back from the replica (a GET per input
// file per compaction otherwise). The copy is best effort: the replica's
// file is what counts, and a missing local copy falls back to it.

package litestream

import (
	"io"
	"os"
	"path/filepath"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// localCopy is a file being written beside an upload, renamed into place
// once complete, before the upload can finish, and removed again if the
// upload fails.
type localCopy struct {
	f         *os.File
	tmp, path string
	failed    bool
	committed bool
}

// newLocalCopy starts a local copy of a compaction output at level, or
// returns nil when no higher level reads that level.
func (db *DB) newLocalCopy(level int, minTXID, maxTXID ltx.TXID) *localCopy {
	if level <= 0 || level >= int(db.topCompactionLevel.Load()) {
		return nil
	}
	path := db.LTXPath(level, minTXID, maxTXID)
	if err := internal.MkdirAll(filepath.Dir(path), db.dirPerm()); err != nil {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, db.filePerm().Mode)
	if err != nil {
		return nil
	}
	return &localCopy{f: f, tmp: tmp, path: path}
}

// Write copies p, never failing: a failed copy is dropped at commit.
func (c *localCopy) Write(p []byte) (int, error) {
	if c != nil && !c.failed {
		if _, err := c.f.Write(p); err != nil {
			c.failed = true
		}
	}
	return len(p), nil
}

// commit makes the copy durable and puts it in place, or drops it. It is
// called once, after the copy is complete.
func (c *localCopy) commit() {
	if c == nil {
		return
	}
	if c.failed || c.f.Sync() != nil {
		c.abort()
		return
	}
	if err := c.f.Close(); err != nil {
		_ = os.Remove(c.tmp)
		return
	}
	if err := os.Rename(c.tmp, c.path); err != nil {
		_ = os.Remove(c.tmp)
		return
	}
	c.committed = true
	_ = internal.SyncDir(filepath.Dir(c.path))
}

// discard drops the copy after a failed upload, committed or not.
func (c *localCopy) discard() {
	if c == nil {
		return
	}
	if c.committed {
		_ = os.Remove(c.path)
		return
	}
	c.abort()
}

// abort drops the copy.
func (c *localCopy) abort() {
	if c == nil {
		return
	}
	_ = c.f.Close()
	_ = os.Remove(c.tmp)
}

// writer returns w, teeing into the copy if there is one.
func (c *localCopy) writer(w io.Writer) io.Writer {
	if c == nil {
		return w
	}
	return io.MultiWriter(w, c)
}
