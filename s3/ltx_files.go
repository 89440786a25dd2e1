// Listing, reading, writing and deleting LTX files in S3.

package s3

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// LTXFiles lists a level's files with MinTXID >= seek in ascending order,
// one ListObjectsV2 page at a time. With useMetadata, each page's objects are
// HEADed in parallel (MetadataConcurrency) for the stored header timestamp;
// otherwise CreatedAt is LastModified.
//
// With an empty Path keys start with "/" (see the package doc). Servers that
// strip that slash (MinIO) list nothing under "/<level>/", so an empty
// first listing is retried under "<level>/".
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	client, _, err := c.clients(ctx)
	if err != nil {
		return nil, err
	}
	list := func(prefix string) *s3.ListObjectsV2Paginator {
		input := &s3.ListObjectsV2Input{Bucket: aws.String(c.Bucket), Prefix: aws.String(prefix)}
		if seek > 0 {
			// Keys sort like TXIDs, so the listing can start at the seek key.
			input.StartAfter = aws.String(prefix + fmt.Sprintf("%016x", uint64(seek)-1) + "-ffffffffffffffff.ltx")
		}
		return s3.NewListObjectsV2Paginator(client, input)
	}
	paginator := list(c.levelPrefix(level))
	first := true
	return internal.NewPageIterator(func() ([]*ltx.FileInfo, bool, error) {
		page, err := c.listPage(ctx, paginator, level, seek, useMetadata)
		if first && c.Path == "" && err == nil && len(page) == 0 && !paginator.HasMorePages() {
			paginator = list(strings.TrimPrefix(c.levelPrefix(level), "/"))
			page, err = c.listPage(ctx, paginator, level, seek, useMetadata)
		}
		first = false
		return page, paginator.HasMorePages(), err
	}), nil
}

// listPage fetches one listing page and turns its LTX keys into file infos.
func (c *ReplicaClient) listPage(ctx context.Context, paginator *s3.ListObjectsV2Paginator, level int, seek ltx.TXID, useMetadata bool) ([]*ltx.FileInfo, error) {
	out, err := paginator.NextPage(ctx)
	if err != nil {
		return nil, be.Errorf("list L%d under %q: %w", level, c.Path, err)
	}
	var page []*ltx.FileInfo
	var keys []string
	for _, obj := range out.Contents {
		key := aws.ToString(obj.Key)
		if info := backend.FileInfo(path.Base(key), level, seek, aws.ToInt64(obj.Size), aws.ToTime(obj.LastModified)); info != nil {
			page, keys = append(page, info), append(keys, key)
		}
	}
	if !useMetadata {
		return page, nil
	}
	client, _, err := c.clients(ctx)
	if err != nil {
		return nil, err
	}
	// HEAD failures keep LastModified (as upstream), except a cancelled context.
	return page, backend.FillCreatedAt(ctx, c.MetadataConcurrency, keys, page, func(ctx context.Context, key string) (string, error) {
		input := &s3.HeadObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)}
		c.applySSECToHead(input)
		out, err := client.HeadObject(ctx, input)
		if err != nil {
			return "", err
		}
		return out.Metadata[MetadataKeyTimestamp], nil
	})
}

// measure returns a body for the uploader and its size once uploaded: a
// seekable r as it is (so the uploader reads parts in place) with the
// length left in it, any other r wrapped to count its bytes.
func measure(r io.Reader) (io.Reader, sizer, error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			end, err := rs.Seek(0, io.SeekEnd)
			if err != nil {
				return nil, nil, fmt.Errorf("seek to end: %w", err)
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return nil, nil, fmt.Errorf("rewind: %w", err)
			}
			return rs, fixedSize(end - start), nil
		}
	}
	cr := &internal.CountingReader{R: r}
	return cr, cr, nil
}

// sizer reports the number of bytes uploaded.
type sizer interface{ N() int64 }

type fixedSize int64

func (s fixedSize) N() int64 { return int64(s) }
