// Package file implements a ReplicaClient that stores LTX files in a local
// directory, laid out as <path>/ltx/<level>/<min>-<max>.ltx.
//
// URL form: file:///absolute/path (the query is ignored).
//
// Writes are atomic: a file is written to a temporary name in the same
// directory ("<min>-<max>.ltx.<random>.tmp"), fsynced, renamed into place and
// the directory fsynced. Listings return only final names. A writer killed
// before its rename leaves its temporary file behind; the next write to that
// level directory (at most once an hour per directory) removes temporary
// files untouched for internal.StaleTempAge, which no live writer owns (see
// there why that is safe). The LTX header timestamp becomes the file's
// mtime, so CreatedAt is exact in both listing modes.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "file"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// ReplicaClient stores LTX files under a local directory.
type ReplicaClient struct {
	// Replica, when set, makes new files and directories copy the mode and
	// owner of its database file and directory. Optional.
	Replica *litestream.Replica

	path    string
	logger  backend.Logger
	sweeper internal.TempSweeper // when each level directory was last swept
}

// NewReplicaClient returns a client rooted at path.
func NewReplicaClient(path string) *ReplicaClient {
	c := &ReplicaClient{path: path}
	return c
}

// NewReplicaClientFromURL builds a client from a parsed file:// URL.
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	if urlPath == "" {
		return nil, fmt.Errorf("file replica path required")
	}
	return NewReplicaClient(urlPath), nil
}

func init() {
	litestream.RegisterReplicaClientFactory("file", NewReplicaClientFromURL)
}

// Type returns "file".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// Init does nothing: a directory needs no connection.
func (c *ReplicaClient) Init(ctx context.Context) error { return nil }

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Path returns the root directory.
func (c *ReplicaClient) Path() string { return c.path }

// LTXLevelDir returns the directory of a level.
func (c *ReplicaClient) LTXLevelDir(level int) string {
	return filepath.Join(c.path, "ltx", strconv.Itoa(level))
}

// LTXFilePath returns the path of an LTX file.
func (c *ReplicaClient) LTXFilePath(level int, minTXID, maxTXID ltx.TXID) string {
	return filepath.Join(c.LTXLevelDir(level), ltx.FormatFilename(minTXID, maxTXID))
}

// LTXFiles lists a level's files with MinTXID >= seek in TXID order.
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	dir := c.LTXLevelDir(level)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return ltx.NewFileInfoSliceIterator(nil), nil
	} else if err != nil {
		return nil, be.Errorf("list %s: %w", dir, err)
	}

	infos := make([]*ltx.FileInfo, 0, len(entries))
	for _, entry := range entries {
		if minTXID, _, err := ltx.ParseFilename(entry.Name()); err != nil || minTXID < seek {
			continue // not an LTX file, or below seek: no stat needed
		}
		fi, err := entry.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted while listing
		} else if err != nil {
			return nil, be.Errorf("stat %s: %w", filepath.Join(dir, entry.Name()), err)
		}
		infos = append(infos, backend.FileInfo(entry.Name(), level, seek, fi.Size(), fi.ModTime()))
	}
	if useMetadata {
		// The mtime is set to the header timestamp, but FAT, HFS+ and many
		// network mounts keep it to the second or coarser: rounded down, a
		// restore by time would take commits made after the time.
		if err := litestream.FetchLTXHeaderTimestamps(ctx, c, infos); err != nil {
			return nil, be.Errorf("list %s: %w", dir, err)
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// OpenLTXFile opens a file at offset, limited to size bytes when size > 0.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	filename := c.LTXFilePath(level, minTXID, maxTXID)
	f, err := os.Open(filename)
	if err == nil && offset > 0 {
		if _, err = f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			err = fmt.Errorf("seek to %d: %w", offset, err)
		}
	}
	// An *os.PathError of a missing file already matches os.ErrNotExist.
	return be.Opened(filename, level, minTXID, maxTXID, size, f, err, func(error) bool { return false })
}

// WriteLTXFile writes r atomically and sets the file's mtime to the LTX
// header timestamp.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (info *ltx.FileInfo, err error) {
	return be.WriteLTX(level, minTXID, maxTXID, r, c.LTXFilePath, func(filename string, r io.Reader, timestamp time.Time) (int64, error) {
		dirPerm, filePerm := c.perms()
		if err := internal.MkdirAll(filepath.Dir(filename), dirPerm); err != nil {
			return 0, fmt.Errorf("create directory: %w", err)
		}

		c.removeStaleTemps(filepath.Dir(filename))

		write := internal.WriteFileAtomic
		if litestream.IsCreateOnly(ctx) {
			write = internal.WriteFileAtomicNoReplace
		}
		size, err := write(filename, filePerm, r)
		if errors.Is(err, os.ErrExist) {
			return 0, litestream.ErrLTXFileExists
		} else if err != nil {
			return 0, err
		}
		if err := os.Chtimes(filename, timestamp, timestamp); err != nil {
			return 0, fmt.Errorf("set timestamp: %w", err)
		}
		return size, nil
	})
}

// removeStaleTemps removes the temporary files of dead writers from dir, if
// due. Failures are logged: they must not stop the write.
func (c *ReplicaClient) removeStaleTemps(dir string) {
	c.sweeper.Sweep(c.logger.Get(be), dir, func() ([]os.FileInfo, error) {
		entries, err := os.ReadDir(dir)
		fis := make([]os.FileInfo, 0, len(entries))
		for _, entry := range entries {
			if fi, err := entry.Info(); err == nil {
				fis = append(fis, fi)
			}
		}
		return fis, err
	}, func(name string) error { return os.Remove(filepath.Join(dir, name)) })
}

// perms returns the mode and owner for new directories and files: the
// database's when the client belongs to an initialized replica.
func (c *ReplicaClient) perms() (dirPerm, filePerm internal.Perm) {
	dirPerm, filePerm = internal.DefaultDirPerm, internal.DefaultFilePerm
	if c.Replica == nil || c.Replica.DB() == nil {
		return dirPerm, filePerm
	}
	if fi := c.Replica.DB().DirInfo(); fi != nil {
		dirPerm = internal.PermOf(fi)
	}
	if fi := c.Replica.DB().FileInfo(); fi != nil {
		filePerm = internal.PermOf(fi)
	}
	return dirPerm, filePerm
}

// DeleteLTXFiles removes the files, ignoring missing ones.
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	return be.DeleteEach(a, c.LTXFilePath, func(filename string) error {
		if err := os.Remove(filename); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
}

// DeleteAll removes the root directory and everything in it.
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	if err := os.RemoveAll(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return be.Errorf("delete all under %s: %w", c.path, err)
	}
	return nil
}
