// replica_client_v3.go reads backups written by Litestream v0.3.x under
// <path>/generations/ on the server: the ReplicaClient's embedded
// v3list.Methods reads through v3Store, which lists and opens remote files.
// CreatedAt is the file's mtime, as v0.3.x used.

package sftp

import (
	"context"
	"io"

	"github.com/benbjohnson/litestream/internal/v3list"
)

// v3Store lists and opens remote files for v3list.
type v3Store struct{ c *ReplicaClient }

func (s v3Store) List(ctx context.Context, dir string) ([]v3list.Entry, error) {
	fis, err := s.c.readDir(ctx, dir)
	entries := make([]v3list.Entry, len(fis))
	for i, fi := range fis {
		entries[i] = v3list.Entry{Name: fi.Name(), Dir: fi.IsDir(), Size: fi.Size(), MTime: fi.ModTime()}
	}
	return entries, err
}

func (s v3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return s.c.open(ctx, name)
}
