// replica_client_v3.go reads backups written by Litestream v0.3.x under
// <path>/generations/ (keys joined as v0.3.x joined them, path.Join, so an
// empty Path gives "generations/..."). CreatedAt is the object's
// LastModified, as v0.3.x used.

package s3

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/v3list"
)

var (
	_ litestream.ReplicaClientV3    = (*ReplicaClient)(nil)
	_ litestream.ReplicaClientV3Raw = (*ReplicaClient)(nil)
)

func (c *ReplicaClient) v3() v3list.Reader { return v3list.Reader{Root: c.Path, Store: v3Store{c}} }

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

// OpenSnapshotV3Raw returns a v0.3.x snapshot object as stored.
func (c *ReplicaClient) OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return c.v3().OpenSnapshotV3Raw(ctx, generation, index)
}

// OpenWALSegmentV3Raw returns a v0.3.x WAL segment object as stored.
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
	prefix := dir + "/"
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.c.Bucket),
		Prefix:    aws.String(prefix),
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
			e := v3list.Entry{Name: path.Base(aws.ToString(obj.Key)), Size: aws.ToInt64(obj.Size)}
			if obj.LastModified != nil {
				e.MTime = *obj.LastModified
			}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func (s v3Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	client, _, err := s.c.clients(ctx)
	if err != nil {
		return nil, err
	}
	input := &s3.GetObjectInput{Bucket: aws.String(s.c.Bucket), Key: aws.String(key)}
	s.c.applySSECToGet(input)
	out, err := client.GetObject(ctx, input)
	if isNotExists(err) {
		return nil, fmt.Errorf("%w: %w", os.ErrNotExist, err)
	} else if err != nil {
		return nil, err
	}
	return out.Body, nil
}
