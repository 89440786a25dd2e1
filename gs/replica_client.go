// Package gs implements a ReplicaClient for Google Cloud Storage on
// cloud.google.com/go/storage.
//
// URL form: gs://bucket/path (no query parameters). Credentials are Google's
// Application Default Credentials; STORAGE_EMULATOR_HOST points the client at
// an emulator, and ClientOptions can do the same per client.
//
// Objects are named <path>/ltx/<level>/<min>-<max>.ltx. The LTX header
// timestamp is stored as custom metadata litestream-timestamp (RFC3339Nano);
// listings return metadata for free, so CreatedAt is the header time in both
// listing modes.
//
// Consistency and atomicity: GCS writes are atomic (an object appears whole
// once the upload finalises, small files in one request, larger ones through
// a resumable upload in 16 MiB chunks) and reads, listings and deletes are
// strongly consistent. Unlike upstream, a seek lists every file with
// MinTXID >= seek, not only the file whose MinTXID equals seek.
package gs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"time"

	"cloud.google.com/go/storage"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "gs"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// MetadataKeyTimestamp is the custom-metadata key holding the LTX header
// timestamp in RFC3339Nano.
const MetadataKeyTimestamp = "litestream-timestamp"

// deleteConcurrency bounds parallel object deletes (GCS has no batch delete
// in the storage library).
const deleteConcurrency = 16

// ReplicaClient stores LTX files in a GCS bucket.
type ReplicaClient struct {
	// Bucket name. Required.
	Bucket string
	// Path is the object-name prefix without a trailing slash; may be empty.
	Path string

	// ClientOptions are passed to storage.NewClient, e.g.
	// option.WithEndpoint and option.WithoutAuthentication for an emulator.
	// Optional; not part of upstream's API.
	ClientOptions []option.ClientOption

	client backend.Lazy[*storage.Client]
	logger backend.Logger
}

// NewReplicaClient returns a new client; set Bucket and Path before use.
func NewReplicaClient() *ReplicaClient {
	c := &ReplicaClient{}
	return c
}

// NewReplicaClientFromURL builds a client from the parts of a gs://bucket/path
// URL. The bucket is required; query parameters are not accepted.
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	if scheme != "gs" {
		return nil, fmt.Errorf("gs replica url: unexpected scheme %q", scheme)
	}
	if host == "" {
		return nil, fmt.Errorf("gs replica url: bucket required")
	}
	for k := range query {
		return nil, fmt.Errorf("gs replica url: unsupported query parameter %q", k)
	}
	c := NewReplicaClient()
	c.Bucket = host
	c.Path = litestream.CleanReplicaURLPath(urlPath)
	return c, nil
}

func init() {
	litestream.RegisterReplicaClientFactory("gs", NewReplicaClientFromURL)
}

// Type returns "gs".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// String returns the replica's location for messages, without passwords.
func (c *ReplicaClient) String() string {
	return internal.ReplicaLocation("gs://"+c.Bucket, c.Path)
}

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Init creates the storage client. It is idempotent and called lazily by
// every operation.
func (c *ReplicaClient) Init(ctx context.Context) error {
	_, err := c.bucket(ctx)
	return err
}

func (c *ReplicaClient) bucket(ctx context.Context) (*storage.BucketHandle, error) {
	client, err := c.client.Get(func() (*storage.Client, error) {
		if c.Bucket == "" {
			return nil, be.Errorf("bucket name required")
		}
		client, err := storage.NewClient(ctx, c.ClientOptions...)
		if err != nil {
			return nil, be.Errorf("new storage client: %w", err)
		}
		return client, nil
	})
	if err != nil {
		return nil, err
	}
	// Uploads carry no preconditions; rewriting an LTX file is idempotent, so
	// let the library retry every operation on transient errors.
	return client.Bucket(c.Bucket).Retryer(storage.WithPolicy(storage.RetryAlways)), nil
}

// Close releases the storage client. The client may be used again after it
// (Init recreates the connection).
func (c *ReplicaClient) Close() error {
	return c.client.Close(func(client *storage.Client) error { return client.Close() })
}

// levelPrefix returns "<path>/ltx/<level>/".
func (c *ReplicaClient) levelPrefix(level int) string {
	return litestream.LTXLevelDir(c.Path, level) + "/"
}

// objectName returns "<path>/ltx/<level>/<min>-<max>.ltx".
func (c *ReplicaClient) objectName(level int, minTXID, maxTXID ltx.TXID) string {
	return litestream.LTXFilePath(c.Path, level, minTXID, maxTXID)
}

// LTXFiles lists a level's files with MinTXID >= seek in ascending order.
// Listing starts at the seek name (names sort like TXIDs) and is lazy.
// CreatedAt is the stored header timestamp, else the object's creation time.
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	bkt, err := c.bucket(ctx)
	if err != nil {
		return nil, err
	}
	prefix := c.levelPrefix(level)
	q := &storage.Query{Prefix: prefix}
	if seek > 0 {
		q.StartOffset = prefix + fmt.Sprintf("%016x", uint64(seek))
	}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Created", "Metadata"}); err != nil {
		return nil, be.Errorf("list %s: %w", prefix, err)
	}
	it := bkt.Objects(ctx, q)
	// One object per fetch: the storage iterator pages by itself.
	return internal.NewPageIterator(func() ([]*ltx.FileInfo, bool, error) {
		attrs, err := it.Next()
		if err == iterator.Done {
			return nil, false, nil
		} else if err != nil {
			return nil, false, be.Errorf("list %s: %w", prefix, err)
		}
		createdAt := backend.CreatedAt(attrs.Metadata[MetadataKeyTimestamp], attrs.Created)
		if info := backend.FileInfo(path.Base(attrs.Name), level, seek, attrs.Size, createdAt); info != nil {
			return []*ltx.FileInfo{info}, true, nil
		}
		return nil, true, nil
	}), nil
}

// OpenLTXFile returns a ranged reader. A missing object gives an error
// matching os.ErrNotExist.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	bkt, err := c.bucket(ctx)
	if err != nil {
		return nil, err
	}
	length := size
	if length <= 0 {
		length = -1 // to the end; 0 would read nothing
	}
	name := c.objectName(level, minTXID, maxTXID)
	r, err := bkt.Object(name).NewRangeReader(ctx, offset, length)
	return be.Opened(name, level, minTXID, maxTXID, 0, r, err, isNotExist) // the range is the limit
}

// isNotExist reports whether err says the object is missing.
func isNotExist(err error) bool { return errors.Is(err, storage.ErrObjectNotExist) }

// WriteLTXFile streams r to the object (one request below the 16 MiB chunk
// size, a resumable upload above) with the header timestamp as metadata. A
// cancelled context aborts the upload and leaves any previous object intact.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	bkt, err := c.bucket(ctx)
	if err != nil {
		return nil, err
	}
	return be.WriteLTX(level, minTXID, maxTXID, r, c.objectName, func(name string, r io.Reader, ts time.Time) (int64, error) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		obj := bkt.Object(name)
		if litestream.IsCreateOnly(ctx) {
			obj = obj.If(storage.Conditions{DoesNotExist: true})
		}
		w := obj.NewWriter(wctx)
		w.ContentType = "application/octet-stream"
		w.Metadata = map[string]string{MetadataKeyTimestamp: internal.FormatTimestamp(ts)}

		n, err := io.Copy(w, r)
		if err != nil {
			cancel() // abort: the object must not be finalised with partial data
			_ = w.Close()
			return 0, err
		}
		if err := w.Close(); isPreconditionFailed(err) {
			return 0, litestream.ErrLTXFileExists
		} else if err != nil {
			return 0, err
		}
		return n, nil
	})
}

// DeleteLTXFiles deletes the objects, up to 16 at a time; missing objects
// are not errors.
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	return be.DeleteBatch(a, c.objectName, func(names []string) error { return c.deleteObjects(ctx, names) })
}

// DeleteAll deletes every object under "<path>/". With an empty Path it
// deletes the replica's "ltx/" tree only, not the rest of the bucket
// (upstream's "/" prefix matched nothing there).
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	bkt, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	prefix := backend.ScopePrefix(c.Path)
	var names []string
	it := bkt.Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			break
		} else if err != nil {
			return be.Errorf("delete all: list %q: %w", prefix, err)
		}
		names = append(names, attrs.Name)
	}
	if err := c.deleteObjects(ctx, names); err != nil {
		return be.Errorf("delete all under %q: %w", prefix, err)
	}
	return nil
}

func (c *ReplicaClient) deleteObjects(ctx context.Context, names []string) error {
	bkt, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteConcurrency)
	for _, name := range names {
		g.Go(func() error {
			if err := bkt.Object(name).Delete(gctx); err != nil && !isNotExist(err) {
				return fmt.Errorf("delete %s: %w", name, err)
			}
			return nil
		})
	}
	return g.Wait()
}
