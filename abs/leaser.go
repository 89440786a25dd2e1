// Leaser for the abs backend: the lease record is the blob
// <path>/lock.json, created with If-None-Match: * and replaced with
// If-Match: <ETag>, so Azure itself decides who holds it. (Azure's own blob
// leases last at most 60 s or forever and are held by a lease ID; ETag
// conditions give the same guarantee with any TTL.)

package abs

import (
	"bytes"
	"context"
	"io"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/objlease"
)

// Lease defaults.
const (
	DefaultLeaseTTL  = 30 * time.Second
	DefaultLeasePath = "lock.json"
	LeaserType       = "abs"
)

// Leaser holds the lease of an Azure Blob Storage replica path.
// AcquireLease, RenewLease and ReleaseLease come from the embedded
// objlease.Methods, on the record read and written below.
type Leaser struct {
	client *ReplicaClient
	leaseMethods

	TTL   time.Duration // default 30s
	Owner string        // default "hostname:pid"
}

// NewLeaser returns a leaser for the client's container and path that
// shares its credentials.
func (c *ReplicaClient) NewLeaser() *Leaser {
	l := &Leaser{client: c}
	l.leaseMethods = objlease.Init(l, &l.TTL, &l.Owner)
	return l
}

// Type returns "abs".
func (l *Leaser) Type() string { return LeaserType }

// leaseMethods is embedded under an unexported name.
type leaseMethods = objlease.Methods

func (l *Leaser) blobName() string { return objlease.Key(l.client.Path, DefaultLeasePath) }

// ReadLease implements litestream.LeaseObject.
func (l *Leaser) ReadLease(ctx context.Context) ([]byte, string, error) {
	client, err := l.client.containerClient()
	if err != nil {
		return nil, "", err
	}
	resp, err := client.NewBlobClient(l.blobName()).DownloadStream(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil, "", os.ErrNotExist
	} else if err != nil {
		return nil, "", be.Errorf("read %s: %w", l.blobName(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, "", be.Errorf("read %s: %w", l.blobName(), err)
	} else if resp.ETag == nil {
		return nil, "", be.Errorf("read %s: no ETag returned", l.blobName())
	}
	return data, string(*resp.ETag), nil
}

// CreateLease implements litestream.LeaseObject with If-None-Match: *.
func (l *Leaser) CreateLease(ctx context.Context, data []byte) (string, error) {
	return l.write(ctx, data, ifNoneMatchAny())
}

// ReplaceLease implements litestream.LeaseObject with If-Match: etag.
func (l *Leaser) ReplaceLease(ctx context.Context, data []byte, etag string) (string, error) {
	return l.write(ctx, data, &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: ptr(azcore.ETag(etag))}})
}

func (l *Leaser) write(ctx context.Context, data []byte, cond *blob.AccessConditions) (string, error) {
	client, err := l.client.containerClient()
	if err != nil {
		return "", err
	}
	resp, err := client.NewBlockBlobClient(l.blobName()).Upload(ctx, nopSeekCloser{bytes.NewReader(data)}, &blockblob.UploadOptions{
		HTTPHeaders:      &blob.HTTPHeaders{BlobContentType: ptr("application/json")},
		AccessConditions: cond,
	})
	if isConditionFailed(err) || bloberror.HasCode(err, bloberror.BlobNotFound) {
		return "", litestream.ErrLeaseConflict
	} else if err != nil {
		return "", be.Errorf("write %s: %w", l.blobName(), err)
	} else if resp.ETag == nil {
		return "", be.Errorf("write %s: no ETag returned", l.blobName())
	}
	return string(*resp.ETag), nil
}

// ifNoneMatchAny is the condition of a create-only write.
func ifNoneMatchAny() *blob.AccessConditions {
	return &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: ptr(azcore.ETagAny)}}
}

// isConditionFailed reports a write refused by its condition.
func isConditionFailed(err error) bool {
	return bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobAlreadyExists)
}

type nopSeekCloser struct{ *bytes.Reader }

func (nopSeekCloser) Close() error { return nil }
