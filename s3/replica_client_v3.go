// replica_client_v3.go reads backups written by Litestream v0.3.x under
// <path>/generations/ (keys joined as v0.3.x joined them, path.Join, so an
// empty Path gives "generations/..."): the ReplicaClient's v0.3.x methods
// delegate to v3list, which lists and opens keys through v3Store.
// CreatedAt is the object's LastModified, as v0.3.x used.

package s3

import (
	"context"
	"io"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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

// v3Store lists and opens keys for v3list.
type v3Store struct{ c *ReplicaClient }

func (s v3Store) List(ctx context.Context, dir string) ([]v3list.Entry, error) {
	client, _, err := s.c.clients(ctx)
	if err != nil {
		return nil, err
	}
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.c.Bucket),
		Prefix:    aws.String(dir + "/"),
		Delimiter: aws.String("/"),
	})
	var entries []v3list.Entry
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, cp := range page.CommonPrefixes {
			entries = append(entries, v3list.Entry{Name: path.Base(strings.TrimSuffix(aws.ToString(cp.Prefix), "/")), Dir: true})
		}
		for _, obj := range page.Contents {
			entries = append(entries, v3list.Entry{Name: path.Base(aws.ToString(obj.Key)), Size: aws.ToInt64(obj.Size), MTime: aws.ToTime(obj.LastModified)})
		}
	}
	return entries, nil
}

func (s v3Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	body, err := s.c.get(ctx, key, "")
	if isNotExists(err) {
		return nil, backend.NotExist(err)
	}
	return body, err
}
