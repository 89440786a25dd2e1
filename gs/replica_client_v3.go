// replica_client_v3.go reads backups written by Litestream v0.3.x under
// <path>/generations/ (names joined with path.Join, as v0.3.x did): the
// ReplicaClient's embedded v3list.Methods reads through v3Store, which lists
// and opens objects. CreatedAt is the object's creation time, as v0.3.x used.

package gs

import (
	"context"
	"io"
	"path"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/benbjohnson/litestream/internal/backend"
	"github.com/benbjohnson/litestream/internal/v3list"
)

// v3Store lists and opens objects for v3list.
type v3Store struct{ c *ReplicaClient }

func (s v3Store) List(ctx context.Context, dir string) ([]v3list.Entry, error) {
	bkt, err := s.c.bucket(ctx)
	if err != nil {
		return nil, err
	}
	it := bkt.Objects(ctx, &storage.Query{Prefix: dir + "/", Delimiter: "/"})
	var entries []v3list.Entry
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return entries, nil
		} else if err != nil {
			return nil, err
		}
		if attrs.Prefix != "" {
			entries = append(entries, v3list.Entry{Name: path.Base(strings.TrimSuffix(attrs.Prefix, "/")), Dir: true})
			continue
		}
		entries = append(entries, v3list.Entry{Name: path.Base(attrs.Name), Size: attrs.Size, MTime: attrs.Created})
	}
}

func (s v3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	bkt, err := s.c.bucket(ctx)
	if err != nil {
		return nil, err
	}
	r, err := bkt.Object(name).NewReader(ctx)
	if isNotExist(err) {
		return nil, backend.NotExist(err)
	}
	return r, err
}
