// Leaser for the s3 backend: the lease record is the object
// <path>/lock.json, created with If-None-Match: * and replaced with
// If-Match: <ETag>, so S3 itself decides who holds it.

package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/benbjohnson/litestream"
)

// Lease defaults.
const (
	DefaultLeaseTTL  = 30 * time.Second
	DefaultLeasePath = "lock.json"
	LeaserType       = "s3"
)

var _ litestream.Leaser = (*Leaser)(nil)

// S3API is the part of the S3 client a Leaser uses.
type S3API interface {
	GetObject(ctx context.Context, params *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, params *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(ctx context.Context, params *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Leaser holds the lease of an S3 replica path. The store must support
// conditional writes (AWS S3 since 2024, MinIO, Cloudflare R2, Tigris).
type Leaser struct {
	mu     sync.Mutex // guards s3
	s3     S3API
	rc     *ReplicaClient // when set, s3 comes from it on first use
	logger *slog.Logger

	Bucket   string
	Path     string // the replica's key prefix; the record is Path + "/lock.json"
	Endpoint string
	TTL      time.Duration // default 30s
	Owner    string        // default "hostname:pid"
}

// NewLeaser returns a leaser with default TTL and owner and no client: set
// Bucket, Path and a client with SetClient.
func NewLeaser() *Leaser {
	return &Leaser{logger: slog.Default().WithGroup("s3-leaser"), TTL: DefaultLeaseTTL, Owner: litestream.DefaultLeaseOwner()}
}

// NewLeaser returns a leaser for the client's bucket and path that shares
// its connection and credentials.
func (c *ReplicaClient) NewLeaser() *Leaser {
	l := NewLeaser()
	l.Bucket, l.Path, l.Endpoint, l.rc = c.Bucket, c.Path, c.Endpoint, c
	return l
}

// SetLogger replaces the leaser's logger.
func (l *Leaser) SetLogger(logger *slog.Logger) { l.logger = logger.WithGroup("s3-leaser") }

// Client returns the S3 client set by SetClient.
func (l *Leaser) Client() S3API {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s3
}

// SetClient sets the S3 client.
func (l *Leaser) SetClient(client S3API) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s3 = client
}

// Type returns "s3".
func (l *Leaser) Type() string { return LeaserType }

// AcquireLease takes the lease if it is free, expired or released.
func (l *Leaser) AcquireLease(ctx context.Context) (*litestream.Lease, error) {
	return litestream.AcquireObjectLease(ctx, l, l.Owner, l.ttl())
}

// RenewLease extends a held lease; ErrLeaseNotHeld if its ETag changed.
func (l *Leaser) RenewLease(ctx context.Context, lease *litestream.Lease) (*litestream.Lease, error) {
	return litestream.RenewObjectLease(ctx, l, lease, l.ttl())
}

// ReleaseLease marks the lease expired, if still held, for a waiter to take.
func (l *Leaser) ReleaseLease(ctx context.Context, lease *litestream.Lease) error {
	return litestream.ReleaseObjectLease(ctx, l, lease)
}

func (l *Leaser) ttl() time.Duration {
	if l.TTL <= 0 {
		return DefaultLeaseTTL
	}
	return l.TTL
}

func (l *Leaser) lockKey() string {
	if l.Path == "" {
		return DefaultLeasePath
	}
	return l.Path + "/" + DefaultLeasePath
}

func (l *Leaser) client(ctx context.Context) (S3API, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s3 == nil && l.rc != nil {
		client, _, err := l.rc.clients(ctx)
		if err != nil {
			return nil, err
		}
		l.s3 = client
	}
	if l.s3 == nil {
		return nil, be.Errorf("leaser has no client: use ReplicaClient.NewLeaser or SetClient")
	}
	return l.s3, nil
}

// ReadLease implements litestream.LeaseObject.
func (l *Leaser) ReadLease(ctx context.Context) ([]byte, string, error) {
	client, err := l.client(ctx)
	if err != nil {
		return nil, "", err
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(l.lockKey())})
	if isNotExists(err) {
		return nil, "", os.ErrNotExist
	} else if err != nil {
		return nil, "", be.Errorf("get %s: %w", l.lockKey(), err)
	}
	defer func() { _ = out.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return nil, "", be.Errorf("read %s: %w", l.lockKey(), err)
	}
	return data, aws.ToString(out.ETag), nil
}

// CreateLease implements litestream.LeaseObject with If-None-Match: *.
func (l *Leaser) CreateLease(ctx context.Context, data []byte) (string, error) {
	return l.put(ctx, data, &s3.PutObjectInput{IfNoneMatch: aws.String("*")})
}

// ReplaceLease implements litestream.LeaseObject with If-Match: etag.
func (l *Leaser) ReplaceLease(ctx context.Context, data []byte, etag string) (string, error) {
	return l.put(ctx, data, &s3.PutObjectInput{IfMatch: aws.String(etag)})
}

func (l *Leaser) put(ctx context.Context, data []byte, input *s3.PutObjectInput) (string, error) {
	client, err := l.client(ctx)
	if err != nil {
		return "", err
	}
	input.Bucket, input.Key = aws.String(l.Bucket), aws.String(l.lockKey())
	input.Body, input.ContentLength = bytes.NewReader(data), aws.Int64(int64(len(data)))
	input.ContentType = aws.String("application/json")
	out, err := client.PutObject(ctx, input)
	switch {
	case isPreconditionFailed(err) || isNotExists(err) || isConditionalConflict(err):
		return "", litestream.ErrLeaseConflict
	case err != nil:
		return "", be.Errorf("put %s: %w", l.lockKey(), err)
	case aws.ToString(out.ETag) == "":
		return "", be.Errorf("put %s: no ETag returned", l.lockKey())
	}
	return aws.ToString(out.ETag), nil
}

// isPreconditionFailed reports a conditional write refused with 412.
func isPreconditionFailed(err error) bool {
	if err == nil {
		return false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var respErr interface{ HTTPStatusCode() int }
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusPreconditionFailed
}

// isConditionalConflict reports S3's 409 for two conditional writes racing
// on one key: the other one won.
func isConditionalConflict(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ConditionalRequestConflict"
}
