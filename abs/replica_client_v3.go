// replica_client_v3.go reads backups written by Litestream v0.3.x under
// <path>/generations/ (names joined with path.Join, as v0.3.x did): the
// ReplicaClient's embedded v3list.Methods reads through v3Store, which lists
// and opens blobs. CreatedAt is the blob's creation time, as v0.3.x used.

package abs

import (
	"context"
	"io"
	"path"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/benbjohnson/litestream/internal/backend"
	"github.com/benbjohnson/litestream/internal/v3list"
)

// v3Store lists and opens blobs for v3list.
type v3Store struct{ c *ReplicaClient }

func (s v3Store) List(ctx context.Context, dir string) ([]v3list.Entry, error) {
	client, err := s.c.containerClient()
	if err != nil {
		return nil, err
	}
	prefix := dir + "/"
	pager := client.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: &prefix})
	var entries []v3list.Entry
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotExist(err) {
			break // no container: nothing stored
		} else if err != nil {
			return nil, err
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				entries = append(entries, v3list.Entry{Name: path.Base(strings.TrimSuffix(*p.Name, "/")), Dir: true})
			}
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || item.Properties == nil {
				continue
			}
			e := v3list.Entry{Name: path.Base(*item.Name), Size: value(item.Properties.ContentLength), MTime: value(item.Properties.CreationTime)}
			if item.Properties.CreationTime == nil {
				e.MTime = value(item.Properties.LastModified)
			}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func (s v3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := s.c.download(ctx, name, 0, 0)
	if isNotExist(err) {
		return nil, backend.NotExist(err)
	}
	return rc, err
}
