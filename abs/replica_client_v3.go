// replica_client_v3.go reads backups written by Litestream v0.3.x under
// <path>/generations/ (names joined with path.Join, as v0.3.x did): the
// ReplicaClient's v0.3.x methods delegate to v3list, which lists and opens
// blobs through v3Store. CreatedAt is the blob's creation time, as v0.3.x
// used.

package abs

import (
	"context"
	"io"
	"path"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/backend"
	"github.com/benbjohnson/litestream/internal/v3list"
)

var (
	_ litestream.ReplicaClientV3    = (*ReplicaClient)(nil)
	_ litestream.ReplicaClientV3Raw = (*ReplicaClient)(nil)
)

// v3 returns the v0.3.x reads of the backup under the client's current root.
func (c *ReplicaClient) v3() v3list.Methods {
	return v3list.NewMethods(ReplicaClientType, c.Path, v3Store{c})
}

// GenerationsV3 returns the v0.3.x generation names, sorted.
func (c *ReplicaClient) GenerationsV3(ctx context.Context) ([]string, error) {
	return c.v3().GenerationsV3(ctx)
}

// SnapshotsV3 returns a generation's v0.3.x snapshots sorted by index.
func (c *ReplicaClient) SnapshotsV3(ctx context.Context, generation string) ([]litestream.SnapshotInfoV3, error) {
	return c.v3().SnapshotsV3(ctx, generation)
}

// WALSegmentsV3 returns a generation's v0.3.x WAL segments sorted by index,
// then offset.
func (c *ReplicaClient) WALSegmentsV3(ctx context.Context, generation string) ([]litestream.WALSegmentInfoV3, error) {
	return c.v3().WALSegmentsV3(ctx, generation)
}

// OpenSnapshotV3 returns a v0.3.x snapshot's decompressed contents.
func (c *ReplicaClient) OpenSnapshotV3(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return c.v3().OpenSnapshotV3(ctx, generation, index)
}

// OpenWALSegmentV3 returns a v0.3.x WAL segment's decompressed contents.
func (c *ReplicaClient) OpenWALSegmentV3(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return c.v3().OpenWALSegmentV3(ctx, generation, index, offset)
}

// OpenSnapshotV3Raw returns a v0.3.x snapshot file as stored.
func (c *ReplicaClient) OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return c.v3().OpenSnapshotV3Raw(ctx, generation, index)
}

// OpenWALSegmentV3Raw returns a v0.3.x WAL segment file as stored.
func (c *ReplicaClient) OpenWALSegmentV3Raw(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return c.v3().OpenWALSegmentV3Raw(ctx, generation, index, offset)
}

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
