// Package internal holds helpers shared by the root package and backends.
package internal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/superfly/ltx"
)

// Perm is a mode plus an owner; UID and GID are -1 when unknown.
type Perm struct {
	Mode os.FileMode
	UID  int
	GID  int
}

// Defaults used when there is no database to copy permissions from.
var (
	DefaultDirPerm  = Perm{Mode: 0o700, UID: -1, GID: -1}
	DefaultFilePerm = Perm{Mode: 0o600, UID: -1, GID: -1}
)

// PermOf returns the permission bits and owner of fi.
func PermOf(fi os.FileInfo) Perm {
	p := Perm{Mode: fi.Mode().Perm(), UID: -1, GID: -1}
	p.UID, p.GID = fileOwner(fi)
	return p
}

// chown applies the owner, best effort: an unprivileged process cannot give
// files away, and that must not stop replication.
func (p Perm) chown(name string) {
	if p.UID >= 0 || p.GID >= 0 {
		_ = os.Chown(name, p.UID, p.GID)
	}
}

// MkdirAll creates dir and its missing parents with perm.
func MkdirAll(dir string, perm Perm) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm.Mode|0o100); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	perm.chown(dir)
	return nil
}

// WriteFileAtomic copies r into a temporary file beside filename, fsyncs it,
// renames it over filename and fsyncs the directory. Readers see either the
// old file or the whole new one. It returns the bytes written.
func WriteFileAtomic(filename string, perm Perm, r io.Reader) (n int64, err error) {
	return writeFileAtomic(filename, perm, r, os.Rename)
}

// WriteFileAtomicNoReplace is WriteFileAtomic that never replaces an existing
// file: the temporary file is hard-linked to filename, which fails with an
// error matching os.ErrExist if the name is taken, even by a concurrent
// writer.
func WriteFileAtomicNoReplace(filename string, perm Perm, r io.Reader) (n int64, err error) {
	return writeFileAtomic(filename, perm, r, func(tmp, filename string) error {
		err := os.Link(tmp, filename)
		_ = os.Remove(tmp)
		return err
	})
}

func writeFileAtomic(filename string, perm Perm, r io.Reader, publish func(tmp, filename string) error) (n int64, err error) {
	f, err := os.CreateTemp(filepath.Dir(filename), filepath.Base(filename)+".*.tmp")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	if err := f.Chmod(perm.Mode); err != nil {
		return 0, err
	}
	perm.chown(tmp)

	if n, err = copyPooled(f, r); err != nil {
		return n, err
	} else if err := f.Sync(); err != nil {
		return n, err
	} else if err := f.Close(); err != nil {
		return n, err
	} else if err := publish(tmp, filename); err != nil {
		return n, err
	}
	return n, SyncDir(filepath.Dir(filename))
}

// IsRootLTXKey reports whether key is "<level %04x>/<min>-<max>.ltx", an
// LTX object at the root of a bucket in the s3/oss layout.
func IsRootLTXKey(key string) bool {
	dir, name, ok := strings.Cut(key, "/")
	if _, _, err := ltx.ParseFilename(name); !ok || err != nil || len(dir) != 4 {
		return false
	}
	_, err := strconv.ParseUint(dir, 16, 16)
	return err == nil
}

// copyBufPool holds copyPooled's buffers.
var copyBufPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyPooled is io.Copy through a pooled buffer. io.Copy allocates 32 KB
// per call for a reader like ltx.PeekHeader's MultiReader, once for every
// file uploaded.
func copyPooled(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBufPool.Get().(*[32 << 10]byte)
	defer copyBufPool.Put(buf)
	// Hiding WriterTo and ReaderFrom makes CopyBuffer use buf.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf[:])
}

// SyncDir fsyncs a directory so that a rename or create in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}

// LimitReadCloser returns rc limited to n bytes; Close closes rc.
func LimitReadCloser(rc io.ReadCloser, n int64) io.ReadCloser {
	return &limitReadCloser{Reader: io.LimitReader(rc, n), c: rc}
}

type limitReadCloser struct {
	io.Reader
	c io.Closer
}

func (l *limitReadCloser) Close() error { return l.c.Close() }
