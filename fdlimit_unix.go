//go:build unix

// fdlimit_unix.go explains a database that fails to start because the
// process ran out of file descriptors, which a Store of thousands of
// databases reaches under a default limit.

package litestream

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// descriptorsPerDB is about how many descriptors a replicating DB keeps
// open: SQLite's database, WAL and shared-memory files on the library's two
// connections, and the database file held for its locks.
const descriptorsPerDB = 6

// explainDescriptorLimit adds what to do to err when the process is out of
// file descriptors (SQLite reports that only as "unable to open").
func explainDescriptorLimit(err error) error {
	var lim syscall.Rlimit
	if err == nil || syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return err
	}
	open := -1
	if entries, rerr := os.ReadDir("/proc/self/fd"); rerr == nil {
		open = len(entries)
	} else if entries, rerr := os.ReadDir("/dev/fd"); rerr == nil {
		open = len(entries)
	}
	if !errors.Is(err, syscall.EMFILE) && (open < 0 || uint64(open)+descriptorsPerDB < lim.Cur) {
		return err
	}
	return fmt.Errorf("%w: the process has %d of its %d file descriptors open (RLIMIT_NOFILE) and each replicating database keeps about %d: raise the limit (ulimit -n, or LimitNOFILE= for a systemd service) to at least %d per database plus what the program needs",
		err, open, lim.Cur, descriptorsPerDB, descriptorsPerDB)
}
