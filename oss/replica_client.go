// Package oss implements a ReplicaClient for Alibaba Cloud Object Storage
// Service on the v1 SDK (github.com/aliyun/aliyun-oss-go-sdk/oss).
//
// URL forms:
//
//	oss://bucket/path?endpoint=oss-cn-shanghai.aliyuncs.com&region=cn-shanghai
//	oss://bucket.oss-<region>.aliyuncs.com/path
//	oss://bucket.oss-<region>-internal.aliyuncs.com/path
//
// Query parameters: endpoint (a bare host gets http:// when local, else
// https://) and region (default cn-hangzhou; the endpoint defaults to
// https://oss-<region>.aliyuncs.com). Credentials come from the
// AccessKeyID/AccessKeySecret fields, else OSS_ACCESS_KEY_ID,
// OSS_ACCESS_KEY_SECRET (and OSS_SESSION_TOKEN). Requests are signed with OSS
// V1 signatures.
//
// Keys are <path>/<level as %04x>/<min>-<max>.ltx like upstream (and s3).
//
// Consistency and atomicity: OSS gives strong read-after-write consistency;
// a PutObject or a completed multipart upload replaces an object atomically.
// Files up to PartSize go in one PutObject, larger ones as a multipart upload
// of PartSize parts (Concurrency at once), never buffering more than
// Concurrency+1 parts. The LTX header timestamp is stored as metadata
// x-oss-meta-litestream-timestamp; listing with useMetadata reads it with a
// HEAD per object, otherwise LastModified is reported.
package oss

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "oss"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// MetadataKeyTimestamp is the metadata key (x-oss-meta-litestream-timestamp)
// holding the LTX header timestamp in RFC3339Nano.
const MetadataKeyTimestamp = "litestream-timestamp"

// MaxKeys is the most keys one list page or multi-object delete carries.
const MaxKeys = 1000

// DefaultRegion is used when no region is configured.
const DefaultRegion = "cn-hangzhou"

// DefaultMetadataConcurrency is how many HEAD requests LTXFiles runs at once
// when useMetadata is set.
const DefaultMetadataConcurrency = 50

// Defaults for multipart uploads.
const (
	DefaultPartSize    = 5 << 20
	DefaultConcurrency = 3
)

// ReplicaClient stores LTX files in an OSS bucket. Exported fields must be
// set before the first call.
type ReplicaClient struct {
	// AccessKeyID and AccessKeySecret are static credentials; when either is
	// empty the OSS_* environment variables are used.
	AccessKeyID     string
	AccessKeySecret string

	// Region of the bucket; default cn-hangzhou.
	Region string
	// Bucket name. Required.
	Bucket string
	// Path is the key prefix without a trailing slash; may be empty.
	Path string
	// Endpoint URL; default https://oss-<region>.aliyuncs.com. A bare host
	// gets https:// (http:// for local hosts).
	Endpoint string

	// PartSize is the multipart part size in bytes; 0 means 5 MiB.
	PartSize int64
	// Concurrency is the number of parts uploaded at once; 0 means 3.
	Concurrency int
	// MetadataConcurrency bounds parallel HEADs when listing with metadata;
	// 0 means DefaultMetadataConcurrency.
	MetadataConcurrency int

	bucket backend.Lazy[*oss.Bucket]
	logger backend.Logger
}

// NewReplicaClient returns a client with default settings.
func NewReplicaClient() *ReplicaClient {
	return &ReplicaClient{}
}

// Type returns "oss".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// String returns the replica's location for messages, without passwords.
func (c *ReplicaClient) String() string {
	return internal.ReplicaLocation("oss://"+c.Bucket, c.Path)
}

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Init builds the SDK client. It is idempotent and called lazily by every
// operation.
func (c *ReplicaClient) Init(ctx context.Context) error {
	_, err := c.getBucket()
	return err
}

func (c *ReplicaClient) getBucket() (*oss.Bucket, error) {
	return c.bucket.Get(c.newBucket)
}

func (c *ReplicaClient) newBucket() (*oss.Bucket, error) {
	if c.Bucket == "" {
		return nil, be.Errorf("bucket name required")
	}
	if c.PartSize != 0 && c.PartSize < oss.MinPartSize {
		return nil, be.Errorf("part size %d below the minimum %d", c.PartSize, oss.MinPartSize)
	}
	region := c.Region
	if region == "" {
		region = DefaultRegion
	}
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = "oss-" + region + ".aliyuncs.com"
	}
	endpoint = EnsureEndpointScheme(endpoint)

	opts := []oss.ClientOption{oss.Region(region), oss.UserAgent("litestream")}
	ak, sk := c.AccessKeyID, c.AccessKeySecret
	if ak == "" || sk == "" {
		provider, err := oss.NewEnvironmentVariableCredentialsProvider()
		if err != nil {
			return nil, be.Errorf("credentials: %w", err)
		}
		opts = append(opts, oss.SetCredentialsProvider(&provider))
		ak, sk = "", ""
	}
	client, err := oss.New(endpoint, ak, sk, opts...)
	if err != nil {
		return nil, be.Errorf("new client for %s: %w", endpoint, err)
	}
	bucket, err := client.Bucket(c.Bucket)
	if err != nil {
		return nil, be.Errorf("bucket %q: %w", c.Bucket, err)
	}
	return bucket, nil
}

// levelPrefix returns "<path>/<level %04x>/", or "<level %04x>/" with an
// empty Path: OSS rejects object names that start with "/", which is
// where upstream's concatenation put them.
func (c *ReplicaClient) levelPrefix(level int) string {
	if c.Path == "" {
		return fmt.Sprintf("%04x/", level)
	}
	return c.Path + "/" + fmt.Sprintf("%04x", level) + "/"
}

// ltxKey returns "<path>/<level %04x>/<min>-<max>.ltx".
func (c *ReplicaClient) ltxKey(level int, minTXID, maxTXID ltx.TXID) string {
	return c.levelPrefix(level) + ltx.FormatFilename(minTXID, maxTXID)
}

// LTXFiles lists a level's files with MinTXID >= seek in ascending order,
// one ListObjectsV2 page at a time (starting after the key just below seek).
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	bucket, err := c.getBucket()
	if err != nil {
		return nil, err
	}
	prefix := c.levelPrefix(level)
	var startAfter, token string
	if seek > 0 {
		startAfter = prefix + fmt.Sprintf("%016x", uint64(seek)-1) + "-ffffffffffffffff.ltx"
	}
	return internal.NewPageIterator(func() ([]*ltx.FileInfo, bool, error) {
		opts := []oss.Option{oss.Prefix(prefix), oss.MaxKeys(MaxKeys), oss.WithContext(ctx)}
		if token != "" {
			opts = append(opts, oss.ContinuationToken(token))
		} else if startAfter != "" {
			opts = append(opts, oss.StartAfter(startAfter))
		}
		res, err := bucket.ListObjectsV2(opts...)
		if err != nil {
			return nil, false, be.Errorf("list %s: %w", prefix, err)
		}
		token = res.NextContinuationToken
		more := res.IsTruncated && token != ""

		var page []*ltx.FileInfo
		var keys []string
		for _, obj := range res.Objects {
			if info := backend.FileInfo(path.Base(obj.Key), level, seek, obj.Size, obj.LastModified); info != nil {
				page, keys = append(page, info), append(keys, obj.Key)
			}
		}
		if !useMetadata {
			return page, more, nil
		}
		// A failed HEAD keeps LastModified (as upstream), unless ctx is done.
		return page, more, backend.FillCreatedAt(ctx, c.MetadataConcurrency, keys, page, func(ctx context.Context, key string) (string, error) {
			h, err := bucket.GetObjectDetailedMeta(key, oss.WithContext(ctx))
			return h.Get("X-Oss-Meta-" + MetadataKeyTimestamp), err
		})
	}), nil
}

// OpenLTXFile returns a ranged reader of an object. A missing object gives
// an error matching os.ErrNotExist.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	bucket, err := c.getBucket()
	if err != nil {
		return nil, err
	}
	opts := []oss.Option{oss.WithContext(ctx)}
	if offset > 0 || size > 0 {
		rng := fmt.Sprintf("%d-", offset)
		if size > 0 {
			rng = fmt.Sprintf("%d-%d", offset, offset+size-1)
		}
		opts = append(opts, oss.NormalizedRange(rng), oss.RangeBehavior("standard"))
	}
	key := c.ltxKey(level, minTXID, maxTXID)
	rc, err := bucket.GetObject(key, opts...)
	return be.Opened(key, level, minTXID, maxTXID, size, rc, err, isNotExists)
}

// WriteLTXFile uploads r with the header timestamp as metadata: one
// PutObject when it fits in a part, a multipart upload otherwise.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	bucket, err := c.getBucket()
	if err != nil {
		return nil, err
	}
	return be.WriteLTX(level, minTXID, maxTXID, r, c.ltxKey, func(key string, r io.Reader, ts time.Time) (int64, error) {
		opts := []oss.Option{oss.Meta(MetadataKeyTimestamp, internal.FormatTimestamp(ts)), oss.WithContext(ctx)}
		partSize := c.PartSize
		if partSize <= 0 {
			partSize = DefaultPartSize
		}
		first, err := readPart(r, partSize)
		if err != nil {
			return 0, err
		}
		if int64(len(first)) < partSize {
			return int64(len(first)), bucket.PutObject(key, bytes.NewReader(first), opts...)
		}
		size, err := c.multipartUpload(ctx, bucket, key, first, r, partSize, opts)
		if err != nil {
			return 0, fmt.Errorf("multipart: %w", err)
		}
		return size, nil
	})
}

// readPart reads up to n bytes; a short result means r is exhausted.
func readPart(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n)
	m, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return buf[:m], nil
	}
	return buf[:m], err
}

// multipartUpload uploads first and the rest of r in parts, Concurrency at a
// time, and aborts the upload on any failure.
func (c *ReplicaClient) multipartUpload(ctx context.Context, bucket *oss.Bucket, key string, first []byte, r io.Reader, partSize int64, opts []oss.Option) (size int64, err error) {
	imur, err := bucket.InitiateMultipartUpload(key, opts...)
	if err != nil {
		return 0, fmt.Errorf("initiate: %w", err)
	}
	defer func() {
		if err != nil {
			if aerr := bucket.AbortMultipartUpload(imur, oss.WithContext(context.WithoutCancel(ctx))); aerr != nil {
				c.logger.Get(be).Warn("abort multipart upload failed", "key", key, "error", aerr)
			}
		}
	}()

	concurrency := c.Concurrency
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	var mu sync.Mutex
	var parts []oss.UploadPart

	buf := first
	for n := 1; len(buf) > 0; n++ {
		data, partNumber := buf, n
		size += int64(len(data))
		g.Go(func() error {
			part, err := bucket.UploadPart(imur, bytes.NewReader(data), int64(len(data)), partNumber, oss.WithContext(gctx))
			if err != nil {
				return fmt.Errorf("upload part %d: %w", partNumber, err)
			}
			mu.Lock()
			parts = append(parts, part)
			mu.Unlock()
			return nil
		})
		if int64(len(buf)) < partSize {
			break
		}
		if buf, err = readPart(r, partSize); err != nil {
			_ = g.Wait()
			return 0, err
		}
		if gctx.Err() != nil {
			break
		}
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	sortParts(parts)
	if _, err := bucket.CompleteMultipartUpload(imur, parts, oss.WithContext(ctx)); err != nil {
		return 0, fmt.Errorf("complete: %w", err)
	}
	return size, nil
}

func sortParts(parts []oss.UploadPart) {
	for i := 1; i < len(parts); i++ {
		for j := i; j > 0 && parts[j].PartNumber < parts[j-1].PartNumber; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
}

// DeleteLTXFiles deletes objects in batches of MaxKeys; missing objects are
// not errors (OSS reports them as deleted).
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	return be.DeleteBatch(a, c.ltxKey, func(keys []string) error { return c.deleteKeys(ctx, keys) })
}

// DeleteAll deletes every object under "<path>/"; with an empty Path, the
// objects named like the replica's, "<level>/<min>-<max>.ltx", and nothing
// else in the bucket.
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	bucket, err := c.getBucket()
	if err != nil {
		return err
	}
	prefix := c.Path + "/"
	keep := func(string) bool { return true }
	if c.Path == "" {
		prefix, keep = "", internal.IsRootLTXKey
	}
	var keys []string
	token := ""
	for {
		opts := []oss.Option{oss.Prefix(prefix), oss.MaxKeys(MaxKeys), oss.WithContext(ctx)}
		if token != "" {
			opts = append(opts, oss.ContinuationToken(token))
		}
		res, err := bucket.ListObjectsV2(opts...)
		if err != nil {
			return be.Errorf("delete all: list %s: %w", prefix, err)
		}
		for _, obj := range res.Objects {
			if keep(obj.Key) {
				keys = append(keys, obj.Key)
			}
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			break
		}
		token = res.NextContinuationToken
	}
	if err := c.deleteKeys(ctx, keys); err != nil {
		return be.Errorf("delete all under %s: %w", prefix, err)
	}
	return nil
}

// deleteKeys deletes in batches and checks every key is reported deleted.
func (c *ReplicaClient) deleteKeys(ctx context.Context, keys []string) error {
	bucket, err := c.getBucket()
	if err != nil {
		return err
	}
	return backend.Batches(keys, MaxKeys, func(batch []string) error {
		res, err := bucket.DeleteObjects(batch, oss.DeleteObjectsQuiet(false), oss.WithContext(ctx))
		if err != nil {
			return err
		}
		deleted := make(map[string]bool, len(res.DeletedObjects))
		for _, k := range res.DeletedObjects {
			deleted[k] = true
		}
		var failed []string
		for _, k := range batch {
			if !deleted[k] {
				failed = append(failed, k)
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("%d objects not reported deleted: %s", len(failed), strings.Join(failed[:min(len(failed), 5)], ", "))
		}
		return nil
	})
}

// isNotExists reports whether err is OSS's "no such key" (for HEAD, which has
// no body, any 404).
func isNotExists(err error) bool {
	var se oss.ServiceError
	if errors.As(err, &se) {
		return se.Code == "NoSuchKey" || (se.Code == "" && se.StatusCode == http.StatusNotFound)
	}
	var sep *oss.ServiceError
	if errors.As(err, &sep) {
		return sep.Code == "NoSuchKey" || (sep.Code == "" && sep.StatusCode == http.StatusNotFound)
	}
	return false
}
