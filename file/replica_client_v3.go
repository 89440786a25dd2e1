// replica_client_v3.go reads backups written by Litestream v0.3.x from the
// same directory, <path>/generations/<id>/{snapshots,wal}/: the
// ReplicaClient's embedded v3list.Methods reads through v3Store, which lists
// and opens local files. CreatedAt is the file's mtime, as v0.3.x used.

package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/benbjohnson/litestream/internal/v3list"
)

// v3Store lists and opens local files for v3list; paths come slash-separated.
type v3Store struct{}

func (v3Store) List(ctx context.Context, dir string) ([]v3list.Entry, error) {
	dirEntries, err := os.ReadDir(filepath.FromSlash(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no directory: nothing stored
	} else if err != nil {
		return nil, err
	}
	entries := make([]v3list.Entry, 0, len(dirEntries))
	for _, e := range dirEntries {
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the directory was read
		} else if err != nil {
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(filepath.FromSlash(dir), e.Name()), err)
		}
		entries = append(entries, v3list.Entry{Name: e.Name(), Dir: e.IsDir(), Size: fi.Size(), MTime: fi.ModTime()})
	}
	return entries, nil
}

func (v3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.FromSlash(name))
	if pathErr := (*fs.PathError)(nil); errors.As(err, &pathErr) {
		return nil, pathErr.Err // v3list names the file
	} else if err != nil {
		return nil, err
	}
	return f, nil
}
