// Package abs implements a ReplicaClient that stores LTX files as block
// blobs in an Azure Blob Storage container, named
// <path>/ltx/<level>/<min>-<max>.ltx.
//
// URL form: abs://[account@]container/path. The userinfo user name is the
// storage account; there are no query parameters, so an emulator such as
// Azurite needs Endpoint set in code or configuration.
//
// Credentials, in order of precedence: a SAS token (SASToken or
// $LITESTREAM_AZURE_SAS_TOKEN), a shared key (AccountKey or
// $LITESTREAM_AZURE_ACCOUNT_KEY, with AccountName), otherwise the default
// Azure credential chain (environment, workload identity, managed identity,
// Azure CLI).
//
// Consistency and atomicity: Azure Blob Storage is strongly consistent. A
// write stages 1 MiB blocks and commits the block list at the end, so readers
// see either the previous blob or the whole new one. The LTX header timestamp
// is stored as blob metadata "litestreamtimestamp" (RFC 3339), which listings
// return for free, so CreatedAt is the header time in both listing modes.
// Deletes go through the blob batch API, 256 blobs per request.
package abs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "abs"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// MetadataKeyTimestamp is the blob metadata key holding the LTX header
// timestamp. Azure metadata names must be C# identifiers, hence no hyphen.
const MetadataKeyTimestamp = "litestreamtimestamp"

// maxBatchSize is the most sub-requests one blob batch may carry.
const maxBatchSize = 256

// ReplicaClient stores LTX files in an Azure Blob Storage container.
type ReplicaClient struct {
	// AccountName is the storage account. Required for shared-key auth and
	// for the default endpoint.
	AccountName string
	// AccountKey is the shared key; $LITESTREAM_AZURE_ACCOUNT_KEY if empty.
	AccountKey string
	// SASToken is a shared access signature, with or without a leading "?";
	// $LITESTREAM_AZURE_SAS_TOKEN if empty. It wins over AccountKey.
	SASToken string
	// Endpoint is the service URL; default https://<account>.blob.core.windows.net.
	// Azurite: http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string

	// Bucket is the container name. Required.
	Bucket string
	// Path is the blob name prefix; empty means the container root.
	Path string

	client backend.Lazy[*container.Client]

	logger backend.Logger
}

// NewReplicaClient returns a client with no configuration.
func NewReplicaClient() *ReplicaClient {
	c := &ReplicaClient{}
	return c
}

// NewReplicaClientFromURL builds a client from a parsed abs:// URL.
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	if host == "" {
		return nil, fmt.Errorf("abs replica url: container required (abs://[account@]container/path)")
	}
	c := NewReplicaClient()
	if userinfo != nil {
		c.AccountName = userinfo.Username()
	}
	c.Bucket = host
	c.Path = litestream.CleanReplicaURLPath(urlPath)
	return c, nil
}

func init() {
	litestream.RegisterReplicaClientFactory("abs", NewReplicaClientFromURL)
}

// Type returns "abs".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// String returns the replica's location for messages, without passwords.
func (c *ReplicaClient) String() string {
	return internal.ReplicaLocation("abs://"+internal.UserAt(c.AccountName)+c.Bucket, c.Path)
}

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Init builds the container client. It does not contact the service and is
// idempotent.
func (c *ReplicaClient) Init(ctx context.Context) error {
	_, err := c.containerClient()
	return err
}

func (c *ReplicaClient) containerClient() (*container.Client, error) {
	return c.client.Get(c.newContainerClient)
}

func (c *ReplicaClient) newContainerClient() (*container.Client, error) {
	if c.Bucket == "" {
		return nil, be.Errorf("container required")
	}

	endpoint := c.Endpoint
	if endpoint == "" {
		if c.AccountName == "" {
			return nil, be.Errorf("account name or endpoint required")
		}
		endpoint = fmt.Sprintf("https://%s.blob.core.windows.net", c.AccountName)
	}
	containerURL := strings.TrimSuffix(endpoint, "/") + "/" + url.PathEscape(c.Bucket)

	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    10,
			RetryDelay:    time.Second,
			MaxRetryDelay: 30 * time.Second,
			TryTimeout:    15 * time.Minute,
			StatusCodes: []int{
				http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
				http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
			},
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "litestream"},
	}}

	sasToken := firstNonEmpty(c.SASToken, os.Getenv("LITESTREAM_AZURE_SAS_TOKEN"))
	accountKey := firstNonEmpty(c.AccountKey, os.Getenv("LITESTREAM_AZURE_ACCOUNT_KEY"))

	var client *container.Client
	var err error
	switch {
	case sasToken != "":
		client, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(sasToken, "?"), opts)
	case accountKey != "":
		if c.AccountName == "" {
			return nil, be.Errorf("account name required with an account key")
		}
		var cred *container.SharedKeyCredential
		if cred, err = container.NewSharedKeyCredential(c.AccountName, accountKey); err != nil {
			return nil, be.Errorf("shared key credential: %w", err)
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
	default:
		var cred *azidentity.DefaultAzureCredential
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err != nil {
			return nil, be.Errorf("default azure credential: %w", err)
		}
		client, err = container.NewClient(containerURL, cred, opts)
	}
	if err != nil {
		return nil, be.Errorf("new container client: %w", err)
	}
	return client, nil
}

// LTXFiles lists a level's files with MinTXID >= seek in TXID order. Blob
// listings are lexically ordered and the fixed-width hex names make that
// TXID order. Metadata comes with the listing, so useMetadata changes
// nothing.
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	client, err := c.containerClient()
	if err != nil {
		return nil, err
	}
	prefix := litestream.LTXLevelDir(c.Path, level) + "/"
	pager := client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  &prefix,
		Include: container.ListBlobsInclude{Metadata: true},
	})

	var infos []*ltx.FileInfo
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotExist(err) {
			break // no container: nothing stored yet
		} else if err != nil {
			return nil, be.Errorf("list %s: %w", prefix, err)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || item.Properties == nil {
				continue
			}
			createdAt := backend.CreatedAt(timestampMetadata(item.Metadata), value(item.Properties.CreationTime))
			if info := backend.FileInfo(path.Base(*item.Name), level, seek, value(item.Properties.ContentLength), createdAt); info != nil {
				infos = append(infos, info)
			}
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// timestampMetadata returns the timestamp metadata; Azure may return
// metadata names in another case.
func timestampMetadata(metadata map[string]*string) string {
	for k, v := range metadata {
		if strings.EqualFold(k, MetadataKeyTimestamp) && v != nil {
			return *v
		}
	}
	return ""
}

// OpenLTXFile downloads a file from offset, limited to size bytes when
// size > 0, as one ranged GET.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	key := c.key(level, minTXID, maxTXID)
	rc, err := c.download(ctx, key, offset, size)
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		// An offset at the end of the blob: nothing left to read.
		return io.NopCloser(strings.NewReader("")), nil
	}
	return be.Opened(key, level, minTXID, maxTXID, 0, rc, err, isNotExist) // the range is the limit
}

// download returns a blob from offset, count bytes of it (0: to the end).
// The retry reader resumes the range with a new GET after a broken read.
func (c *ReplicaClient) download(ctx context.Context, key string, offset, count int64) (io.ReadCloser, error) {
	client, err := c.containerClient()
	if err != nil {
		return nil, err
	}
	resp, err := client.NewBlobClient(key).DownloadStream(ctx, &blob.DownloadStreamOptions{
		Range: blob.HTTPRange{Offset: offset, Count: count},
	})
	if err != nil {
		return nil, err
	}
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3}), nil
}

// WriteLTXFile uploads r as a block blob in 1 MiB blocks, with the LTX
// header timestamp as metadata.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	client, err := c.containerClient()
	if err != nil {
		return nil, err
	}
	return be.WriteLTX(level, minTXID, maxTXID, r, c.key, func(key string, r io.Reader, timestamp time.Time) (int64, error) {
		cr := &internal.CountingReader{R: r}
		ts := internal.FormatTimestamp(timestamp)
		opts := &blockblob.UploadStreamOptions{
			BlockSize:   1 << 20,
			Concurrency: 4,
			HTTPHeaders: &blob.HTTPHeaders{BlobContentType: ptr("application/octet-stream")},
			Metadata:    map[string]*string{MetadataKeyTimestamp: &ts},
			AccessTier:  ptr(blob.AccessTierHot),
		}
		if litestream.IsCreateOnly(ctx) {
			opts.AccessConditions = ifNoneMatchAny() // checked when the block list is committed
		}
		if _, err := client.NewBlockBlobClient(key).UploadStream(ctx, cr, opts); isConditionFailed(err) {
			return 0, litestream.ErrLTXFileExists
		} else if err != nil {
			return 0, err
		}
		return cr.N(), nil
	})
}

// DeleteLTXFiles deletes the files in batches; missing files are ignored.
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	return be.DeleteBatch(a, c.key, func(keys []string) error { return c.deleteBlobs(ctx, keys) })
}

// key returns "<path>/ltx/<level>/<min>-<max>.ltx".
func (c *ReplicaClient) key(level int, minTXID, maxTXID ltx.TXID) string {
	return litestream.LTXFilePath(c.Path, level, minTXID, maxTXID)
}

// DeleteAll deletes every blob under Path, and nothing outside it. With an
// empty Path it deletes the replica's "ltx/" tree only: the rest of the
// container is not the replica's.
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	client, err := c.containerClient()
	if err != nil {
		return err
	}
	prefix := backend.ScopePrefix(c.Path)
	pager := client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	var keys []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotExist(err) {
			break
		} else if err != nil {
			return be.Errorf("list %q for delete all: %w", c.Path, err)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name != nil {
				keys = append(keys, *item.Name)
			}
		}
	}
	if err := c.deleteBlobs(ctx, keys); err != nil {
		return be.Errorf("delete all under %q: %w", c.Path, err)
	}
	return nil
}

// deleteBlobs deletes blobs through the batch API, ignoring missing ones.
func (c *ReplicaClient) deleteBlobs(ctx context.Context, keys []string) error {
	client, err := c.containerClient()
	if err != nil {
		return err
	}
	return backend.Batches(keys, maxBatchSize, func(batch []string) error {
		bb, err := client.NewBatchBuilder()
		if err != nil {
			return err
		}
		for _, key := range batch {
			if err := bb.Delete(key, nil); err != nil {
				return fmt.Errorf("add %s to batch: %w", key, err)
			}
		}
		resp, err := client.SubmitBatch(ctx, bb, nil)
		if isNotExist(err) {
			return nil // no container, nothing to delete
		} else if err != nil {
			return fmt.Errorf("submit batch: %w", err)
		}
		for _, item := range resp.Responses {
			if item.Error != nil && !isNotExist(item.Error) {
				return fmt.Errorf("delete %s: %w", value(item.BlobName), item.Error)
			}
		}
		return nil
	})
}

// isNotExist reports whether err says the blob or its container is missing.
func isNotExist(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound)
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

// value returns *p, or the zero value for nil.
func value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
