// replica_client_v3.go reads backups written by Litestream v0.3.x under
// <path>/generations/ (keys joined as v0.3.x joined them, path.Join, so an
// empty Path gives "generations/..."): the ReplicaClient's embedded
// v3list.Methods reads through v3Store, which lists and opens keys.
// CreatedAt is the object's LastModified, as v0.3.x used.

package s3

import (
	"context"
	"io"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/benbjohnson/litestream/internal/backend"
	"github.com/benbjohnson/litestream/internal/v3list"
)

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
