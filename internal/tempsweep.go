// Temporary upload names and the sweep that removes those a dead writer
// left behind, shared by the backends that write a file under a temporary
// name and rename it into place (file, sftp, webdav).

package internal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"
)

// StaleTempAge is how long a temporary upload must go unmodified before a
// writer of the same directory removes it.
//
// Why this is safe: a live writer's temporary file is modified by every
// write, so one untouched for an hour belongs to a writer that died (a
// SIGKILL, a crash, a lost host) or is stalled for that long. And even a
// stalled writer loses only its upload: its rename then finds no file and
// fails, the caller retries, and no final name ever holds a partial file,
// because only a complete temporary file is renamed.
const StaleTempAge = time.Hour

// tempSeq makes temporary names unique among this process's writers.
var tempSeq atomic.Uint64

// LTXTempName returns a temporary name beside final, unique across
// processes and among concurrent writers of this one, that IsLTXTempName
// recognizes: "<final>.<pid>.<nanoseconds>.<seq>.tmp".
func LTXTempName(final string) string {
	return fmt.Sprintf("%s.%d.%d.%d.tmp", final, os.Getpid(), time.Now().UnixNano(), tempSeq.Add(1))
}

// IsLTXTempName reports whether name is a temporary upload of an LTX file:
// "<min>-<max>.ltx.<token>.tmp".
func IsLTXTempName(name string) bool {
	i := strings.Index(name, ".ltx.")
	if i < 0 || !strings.HasSuffix(name, ".tmp") || len(name) <= i+len(".ltx.")+len(".tmp") {
		return false
	}
	_, _, err := ltx.ParseFilename(name[:i+len(".ltx")])
	return err == nil
}

// IsStaleTemp reports whether a directory entry is a temporary LTX upload
// last modified StaleTempAge or more before now.
func IsStaleTemp(name string, modTime, now time.Time) bool {
	return IsLTXTempName(name) && now.Sub(modTime) >= StaleTempAge
}

// TempSweeper says when a directory is due for a sweep: at its first write
// by this client, then once per StaleTempAge. The zero value is ready.
type TempSweeper struct {
	mu   sync.Mutex
	last map[string]time.Time // guarded by mu
}

// Due reports whether dir should be swept now, and if so records it.
func (s *TempSweeper) Due(dir string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.last[dir]; ok && now.Sub(t) < StaleTempAge {
		return false
	}
	if s.last == nil {
		s.last = make(map[string]time.Time)
	}
	s.last[dir] = now
	return true
}

// Sweep removes dir's stale temporary uploads if dir is due. list returns
// dir's entries; remove deletes one by name. Failures are logged, not
// returned: they must not stop the write that triggered the sweep.
func (s *TempSweeper) Sweep(logger *slog.Logger, dir string, list func() ([]os.FileInfo, error), remove func(name string) error) {
	now := time.Now()
	if !s.Due(dir, now) {
		return
	}
	fis, err := list()
	if err != nil {
		logger.Warn("list directory for stale temporary files", "dir", dir, "error", err)
		return
	}
	var removed int
	for _, fi := range fis {
		if fi.IsDir() || !IsStaleTemp(fi.Name(), fi.ModTime(), now) {
			continue
		}
		if err := remove(fi.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			logger.Warn("remove stale temporary file", "path", path.Join(dir, fi.Name()), "error", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		logger.Info("removed stale temporary files", "dir", dir, "count", removed)
	}
}
