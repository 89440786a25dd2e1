// Package s3 implements a ReplicaClient for Amazon S3 and S3-compatible
// object stores (MinIO, Tigris, R2, Backblaze, DigitalOcean, …) on
// aws-sdk-go-v2.
//
// URL form (see NewReplicaClientFromURL for host forms):
//
//	s3://bucket/path?endpoint=host:port&region=us-east-1&force-path-style=true
//
// Query parameters (camelCase or kebab-case): endpoint (a bare host gets
// http:// when local, else https://, and turns on path-style addressing unless
// forcePathStyle=false), region, forcePathStyle, skipVerify, signPayload,
// requireContentMD5, concurrency, partSize, storageClass,
// sseCustomerAlgorithm, sseCustomerKey, sseCustomerKeyMD5, sseKmsKeyId.
// LITESTREAM_S3_ENDPOINT is used when no endpoint is given.
//
// Keys are <path>/<level as %04x>/<min>-<max>.ltx, built by concatenation as
// upstream does, so an empty path gives keys starting with "/". On AWS that is
// a distinct key. Servers that strip a leading slash (MinIO) store "0000/…",
// which the "/0000/" listing prefix misses; where that listing is empty the
// client lists "0000/" too (upstream finds nothing there).
//
// Consistency and atomicity: a PutObject or a completed multipart upload
// replaces an object atomically; S3 (and MinIO) offer read-after-write and
// list-after-write consistency. The LTX header timestamp is stored as user
// metadata litestream-timestamp (RFC3339Nano); listing with useMetadata
// issues a HEAD per object to read it, otherwise LastModified is reported.
package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "s3"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// MetadataKeyTimestamp is the user-metadata key holding the LTX header
// timestamp in RFC3339Nano.
const MetadataKeyTimestamp = "litestream-timestamp"

// MaxKeys is the most keys one DeleteObjects request deletes.
const MaxKeys = 1000

// DefaultRegion is used with a custom endpoint when no region is given.
const DefaultRegion = "us-east-1"

// DefaultMetadataConcurrency is how many HEAD requests LTXFiles runs at once
// per page when useMetadata is set.
const DefaultMetadataConcurrency = 50

// DefaultR2Concurrency is the multipart concurrency used for Cloudflare R2.
const DefaultR2Concurrency = 2

// ReplicaClient stores LTX files in an S3 bucket. Exported fields must be set
// before the first call; they are read once by Init.
type ReplicaClient struct {
	// AccessKeyID and SecretAccessKey are static credentials; when either is
	// empty the SDK's default credential chain is used.
	AccessKeyID     string
	SecretAccessKey string

	// Region of the bucket. Empty: us-east-1 with an Endpoint, otherwise
	// looked up with GetBucketLocation.
	Region string
	// Bucket name, or an access point ARN. Required.
	Bucket string
	// Path is the key prefix without a trailing slash; may be empty.
	Path string
	// Endpoint is the base URL of an S3-compatible service; empty means AWS.
	Endpoint string

	// ForcePathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint.
	ForcePathStyle bool
	// SkipVerify disables TLS certificate verification.
	SkipVerify bool
	// SignPayload signs request bodies; false sends UNSIGNED-PAYLOAD.
	// Default true.
	SignPayload bool
	// RequireContentMD5 adds Content-MD5 to DeleteObjects requests.
	// Default true.
	RequireContentMD5 bool

	// StorageClass of uploaded objects; empty means the bucket default.
	StorageClass string
	// PartSize is the multipart part size in bytes; 0 means 5 MiB, the
	// minimum.
	PartSize int64
	// Concurrency is the number of parts uploaded at once; 0 means the SDK
	// default (5).
	Concurrency int
	// MetadataConcurrency bounds parallel HEADs when listing with metadata;
	// 0 means DefaultMetadataConcurrency.
	MetadataConcurrency int

	// SSE-C settings: algorithm (AES256), base64 key of 32 bytes, and its
	// base64 MD5 (computed when empty). Exclusive with SSEKMSKeyID.
	SSECustomerAlgorithm string
	SSECustomerKey       string
	SSECustomerKeyMD5    string
	// SSEKMSKeyID enables SSE-KMS with that key.
	SSEKMSKeyID string

	conn   backend.Lazy[sdkClients]
	logger backend.Logger
}

// NewReplicaClient returns a client with upstream's defaults
// (SignPayload and RequireContentMD5 on).
func NewReplicaClient() *ReplicaClient {
	c := &ReplicaClient{
		RequireContentMD5: true,
		SignPayload:       true,
	}
	return c
}

// Type returns "s3".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// String returns the replica's location for messages, without passwords.
func (c *ReplicaClient) String() string {
	return internal.ReplicaLocation("s3://"+c.Bucket, c.Path)
}

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Init validates the configuration and builds the SDK client. It is
// idempotent and called lazily by every operation.
func (c *ReplicaClient) Init(ctx context.Context) error {
	_, _, err := c.clients(ctx)
	return err
}

// sdkClients are the SDK client and the uploader built on it.
type sdkClients struct {
	s3       *s3.Client
	uploader *manager.Uploader
}

func (c *ReplicaClient) clients(ctx context.Context) (*s3.Client, *manager.Uploader, error) {
	sdk, err := c.conn.Get(func() (sdkClients, error) { return c.connect(ctx) })
	return sdk.s3, sdk.uploader, err
}

// connect validates the configuration and builds the SDK client.
func (c *ReplicaClient) connect(ctx context.Context) (sdkClients, error) {
	if c.Bucket == "" {
		return sdkClients{}, be.Errorf("bucket name required")
	}
	partSize := c.PartSize
	if partSize == 0 {
		partSize = manager.DefaultUploadPartSize
	} else if partSize < manager.MinUploadPartSize {
		return sdkClients{}, be.Errorf("part size %d below the minimum %d", partSize, manager.MinUploadPartSize)
	}
	if err := c.validateSSE(); err != nil {
		return sdkClients{}, err
	}

	cfg, err := c.config(ctx)
	if err != nil {
		return sdkClients{}, err
	}
	region := c.Region
	if region == "" && c.Endpoint == "" {
		if region, err = bucketRegion(ctx, cfg, c.Bucket); err != nil {
			return sdkClients{}, err
		}
	} else if region == "" {
		region = DefaultRegion
	}
	cfg.Region = region

	client := s3.NewFromConfig(cfg, c.clientOptions)
	return sdkClients{s3: client, uploader: manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = partSize
		if c.Concurrency > 0 {
			u.Concurrency = c.Concurrency
		}
		if c.Endpoint != "" {
			u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
	})}, nil
}

// config builds the SDK configuration: HTTP client, credentials, retries.
func (c *ReplicaClient) config(ctx context.Context) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(DefaultRegion),
		config.WithHTTPClient(c.httpClient()),
		config.WithRetryer(newRetryer),
	}
	if c.AccessKeyID != "" && c.SecretAccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	}
	if mode := debugLogMode(os.Getenv("LITESTREAM_S3_DEBUG")); mode != 0 {
		opts = append(opts, config.WithClientLogMode(mode))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, be.Errorf("load aws config: %w", err)
	}
	return cfg, nil
}

// clientOptions applies addressing, endpoint and the S3-compatibility
// middleware to the service client.
func (c *ReplicaClient) clientOptions(o *s3.Options) {
	o.UsePathStyle = c.ForcePathStyle
	o.UseARNRegion = true
	if c.Endpoint != "" {
		o.BaseEndpoint = aws.String(c.Endpoint)
		// Most S3-compatible services reject the SDK's default CRC32
		// trailers; compute checksums only where the API demands them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	o.APIOptions = append(o.APIOptions, c.middleware()...)
}

// httpClient returns upstream's transport settings (long overall timeout for
// big uploads, pooled connections, optional InsecureSkipVerify) as a
// buildable client, so the SDK can still add AWS_CA_BUNDLE roots.
func (c *ReplicaClient) httpClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(24 * time.Hour).
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout, d.KeepAlive = 30*time.Second, 30*time.Second
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns, t.MaxIdleConnsPerHost = 100, 100
			t.IdleConnTimeout = 90 * time.Second
			if c.SkipVerify {
				if t.TLSClientConfig == nil {
					t.TLSClientConfig = &tls.Config{}
				}
				t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // opt-in
			}
		})
}

// newRetryer retries up to 10 attempts without a retry token bucket (so a
// long outage does not exhaust the quota), and also on 408 and
// RequestCanceled (Tigris load shedding).
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.RateLimiter = ratelimit.None
		o.Retryables = append(o.Retryables,
			retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{http.StatusRequestTimeout: {}}},
			retry.RetryableErrorCode{Codes: map[string]struct{}{"RequestCanceled": {}}},
		)
	})
}

// bucketRegion asks AWS where the bucket lives.
func bucketRegion(ctx context.Context, cfg aws.Config, bucket string) (string, error) {
	cfg.Region = DefaultRegion
	out, err := s3.NewFromConfig(cfg).GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
	if err != nil {
		return "", be.Errorf("look up region of bucket %q: %w", bucket, err)
	}
	if out.LocationConstraint == "" {
		return DefaultRegion, nil
	}
	return string(out.LocationConstraint), nil
}

// levelPrefix returns "<path>/<level %04x>/".
func (c *ReplicaClient) levelPrefix(level int) string {
	return c.Path + "/" + fmt.Sprintf("%04x", level) + "/"
}

// ltxKey returns "<path>/<level %04x>/<min>-<max>.ltx".
func (c *ReplicaClient) ltxKey(level int, minTXID, maxTXID ltx.TXID) string {
	return c.levelPrefix(level) + ltx.FormatFilename(minTXID, maxTXID)
}

// OpenLTXFile returns a ranged reader of an object. A missing object gives
// an error matching os.ErrNotExist.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	rng := fmt.Sprintf("bytes=%d-", offset)
	if size > 0 {
		rng = fmt.Sprintf("bytes=%d-%d", offset, offset+size-1)
	}
	key := c.ltxKey(level, minTXID, maxTXID)
	body, err := c.get(ctx, key, rng)
	return be.Opened(key, level, minTXID, maxTXID, size, body, err, isNotExists)
}

// get returns an object's body, or the part rng names ("" for all), with
// the SSE-C key when one is configured.
func (c *ReplicaClient) get(ctx context.Context, key, rng string) (io.ReadCloser, error) {
	client, _, err := c.clients(ctx)
	if err != nil {
		return nil, err
	}
	input := &s3.GetObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)}
	if rng != "" {
		input.Range = aws.String(rng)
	}
	c.applySSECToGet(input)
	out, err := client.GetObject(ctx, input)
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// WriteLTXFile uploads r: a single PutObject below PartSize, multipart
// above, streaming (a seekable r is read in place, any other in parts). The
// header timestamp is stored as metadata litestream-timestamp.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	_, uploader, err := c.clients(ctx)
	if err != nil {
		return nil, err
	}
	return be.WriteLTX(level, minTXID, maxTXID, r, c.ltxKey, func(key string, r io.Reader, ts time.Time) (int64, error) {
		body, size, err := measure(r)
		if err != nil {
			return 0, err
		}
		input := &s3.PutObjectInput{
			Bucket:   aws.String(c.Bucket),
			Key:      aws.String(key),
			Body:     body,
			Metadata: map[string]string{MetadataKeyTimestamp: internal.FormatTimestamp(ts)},
		}
		if c.StorageClass != "" {
			input.StorageClass = types.StorageClass(c.StorageClass)
		}
		c.applySSEToPut(input)
		if litestream.IsCreateOnly(ctx) {
			input.IfNoneMatch = aws.String("*") // also sent on CompleteMultipartUpload
		}

		out, err := uploader.Upload(ctx, input)
		if isPreconditionFailed(err) {
			return 0, litestream.ErrLTXFileExists
		} else if err != nil {
			return 0, err
		} else if out.ETag == nil || *out.ETag == "" {
			return 0, fmt.Errorf("upload: no ETag returned")
		}
		return size.N(), nil
	})
}

// DeleteLTXFiles deletes objects in batches of MaxKeys. Missing objects are
// not errors (S3 reports them as deleted).
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	return be.DeleteBatch(a, c.ltxKey, func(keys []string) error { return c.deleteKeys(ctx, keys, false) })
}

// DeleteAll deletes every object under "<path>/". With an empty Path it
// deletes only the objects named like the replica's, "/<level>/<min>-<max>.ltx",
// or on a server that strips the leading slash (MinIO) "<level>/…", and
// nothing else in the bucket.
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	client, _, err := c.clients(ctx)
	if err != nil {
		return err
	}
	list := func(prefix string, keep func(key string) bool) ([]string, error) {
		var keys []string
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(c.Bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, be.Errorf("delete all: list %q: %w", prefix, err)
			}
			for _, obj := range page.Contents {
				if key := aws.ToString(obj.Key); keep(key) {
					keys = append(keys, key)
				}
			}
		}
		return keys, nil
	}
	keep := func(string) bool { return true }
	if c.Path == "" {
		// At the root, only the replica's keys: "/<level>/<min>-<max>.ltx".
		keep = func(key string) bool {
			rest, ok := strings.CutPrefix(key, "/")
			return ok && internal.IsRootLTXKey(rest)
		}
	}
	keys, err := list(c.Path+"/", keep)
	if err == nil && len(keys) == 0 && c.Path == "" {
		keys, err = list("", internal.IsRootLTXKey)
	}
	if err != nil {
		return err
	}
	if err := c.deleteKeys(ctx, keys, true); err != nil {
		return be.Errorf("delete all under %s/: %w", c.Path, err)
	}
	return nil
}

func (c *ReplicaClient) deleteKeys(ctx context.Context, keys []string, quiet bool) error {
	client, _, err := c.clients(ctx)
	if err != nil {
		return err
	}
	return backend.Batches(keys, MaxKeys, func(batch []string) error {
		objs := make([]types.ObjectIdentifier, len(batch))
		for i, key := range batch {
			objs[i] = types.ObjectIdentifier{Key: aws.String(key)}
		}
		out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(c.Bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(quiet)},
		})
		if err != nil {
			return err
		}
		return deleteOutputError(c.logger.Get(be), out.Errors)
	})
}

// deleteOutputError logs up to five per-key failures and returns them as
// one error; NoSuchKey failures are ignored.
func deleteOutputError(logger *slog.Logger, errs []types.Error) error {
	var msgs []string
	for _, e := range errs {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		if len(msgs) < 5 {
			logger.Error("delete object failed", "key", aws.ToString(e.Key), "code", aws.ToString(e.Code), "message", aws.ToString(e.Message))
		}
		msgs = append(msgs, fmt.Sprintf("%s: %s", aws.ToString(e.Key), aws.ToString(e.Message)))
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%d objects not deleted: %s", len(msgs), strings.Join(msgs, "; "))
}

// isNotExists reports whether err says the object or key is missing.
func isNotExists(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// envCredentials returns AWS_* credentials, else LITESTREAM_* ones.
func envCredentials() (accessKeyID, secretAccessKey string) {
	if id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); id != "" || secret != "" {
		return id, secret
	}
	return os.Getenv("LITESTREAM_ACCESS_KEY_ID"), os.Getenv("LITESTREAM_SECRET_ACCESS_KEY")
}

// envEndpoint returns LITESTREAM_S3_ENDPOINT.
func envEndpoint() string { return os.Getenv("LITESTREAM_S3_ENDPOINT") }

// debugLogMode maps LITESTREAM_S3_DEBUG's comma-separated words to SDK log
// modes.
func debugLogMode(s string) aws.ClientLogMode {
	var mode aws.ClientLogMode
	for _, w := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(w)) {
		case "signing":
			mode |= aws.LogSigning
		case "request":
			mode |= aws.LogRequest
		case "request-with-body":
			mode |= aws.LogRequestWithBody
		case "response":
			mode |= aws.LogResponse
		case "response-with-body":
			mode |= aws.LogResponseWithBody
		case "retries":
			mode |= aws.LogRetries
		case "all":
			mode |= aws.LogSigning | aws.LogRequest | aws.LogResponse | aws.LogRetries
		}
	}
	return mode
}
