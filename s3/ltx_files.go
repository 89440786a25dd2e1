// Listing, reading, writing and deleting LTX files in S3.

package s3

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/benbjohnson/litestream/internal"
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
		return nil, fmt.Errorf("list L%d: %w", level, err)
	}
	var page []*ltx.FileInfo
	var keys []string
	for _, obj := range out.Contents {
		key := aws.ToString(obj.Key)
		minTXID, maxTXID, err := ltx.ParseFilename(path.Base(key))
		if err != nil || minTXID < seek {
			continue
		}
		page = append(page, &ltx.FileInfo{
			Level:     level,
			MinTXID:   minTXID,
			MaxTXID:   maxTXID,
			Size:      aws.ToInt64(obj.Size),
			CreatedAt: aws.ToTime(obj.LastModified).UTC(),
		})
		keys = append(keys, key)
	}
	if useMetadata {
		return page, c.fillTimestamps(ctx, keys, page)
	}
	return page, nil
}

// fillTimestamps HEADs objects in parallel and replaces CreatedAt with the
// stored header timestamp where present. HEAD failures keep LastModified
// (as upstream), except a cancelled context.
func (c *ReplicaClient) fillTimestamps(ctx context.Context, keys []string, infos []*ltx.FileInfo) error {
	client, _, err := c.clients(ctx)
	if err != nil {
		return err
	}
	limit := c.MetadataConcurrency
	if limit <= 0 {
		limit = DefaultMetadataConcurrency
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := range keys {
		g.Go(func() error {
			input := &s3.HeadObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(keys[i])}
			c.applySSECToHead(input)
			out, err := client.HeadObject(gctx, input)
			if err != nil {
				return nil
			}
			if v, ok := out.Metadata[MetadataKeyTimestamp]; ok {
				if ts, err := internal.ParseTimestamp(v); err == nil {
					infos[i].CreatedAt = ts.UTC()
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

// prepareBody reads the LTX header timestamp from r and returns a body for
// the uploader that still starts at the header. A seekable r is rewound and
// passed through (so the uploader reads parts in place); any other r is
// wrapped to count its bytes.
func prepareBody(r io.Reader) (body io.Reader, size sizer, ts time.Time, err error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			end, err := rs.Seek(0, io.SeekEnd)
			if err != nil {
				return nil, nil, time.Time{}, fmt.Errorf("seek to end: %w", err)
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return nil, nil, time.Time{}, fmt.Errorf("rewind: %w", err)
			}
			ts, _, err := internal.PeekLTXTimestamp(rs)
			if err != nil {
				return nil, nil, time.Time{}, err
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return nil, nil, time.Time{}, fmt.Errorf("rewind: %w", err)
			}
			return rs, fixedSize(end - start), ts, nil
		}
	}
	ts, r, err = internal.PeekLTXTimestamp(r)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	cr := &internal.CountingReader{R: r}
	return cr, cr, ts, nil
}

// sizer reports the number of bytes uploaded.
type sizer interface{ N() int64 }

type fixedSize int64

func (s fixedSize) N() int64 { return int64(s) }
