// Tests of the S3 client against MinIO.
package s3_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	"github.com/benbjohnson/litestream/s3"
)

// mustMinIO starts MinIO and creates a bucket of the test's own.
func mustMinIO(t testing.TB) clienttest.Fixture {
	t.Helper()
	endpoint, ak, sk := testserver.StartMinIO(t)
	bucket := clienttest.UniqueName()
	raw := awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, ""),
	})
	ctx := context.Background()
	if _, err := raw.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return clienttest.Fixture{
		NewClient: func(t testing.TB, path string) litestream.ReplicaClient {
			c := s3.NewReplicaClient()
			c.AccessKeyID, c.SecretAccessKey = ak, sk
			c.Bucket, c.Path = bucket, path
			c.Endpoint, c.ForcePathStyle = endpoint, true
			return c
		},
		Layout: clienttest.LayoutHexLevel,
		Names: func(t testing.TB) []string {
			t.Helper()
			var names []string
			p := awss3.NewListObjectsV2Paginator(raw, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatalf("list bucket: %v", err)
				}
				for _, obj := range page.Contents {
					names = append(names, aws.ToString(obj.Key))
				}
			}
			return names // in key order
		},
		Get: func(name string) (io.ReadCloser, error) {
			out, err := raw.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
			if err != nil {
				return nil, err
			}
			return out.Body, nil
		},
		Put: func(t testing.TB, name string, data []byte) {
			t.Helper()
			if _, err := raw.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(name), Body: bytes.NewReader(data)}); err != nil {
				t.Fatalf("put %s: %v", name, err)
			}
		},
		Stamp: func(t testing.TB, name string) string {
			t.Helper()
			head, err := raw.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
			if err != nil {
				t.Fatalf("head %s: %v", name, err)
			}
			return head.Metadata[s3.MetadataKeyTimestamp]
		},
	}
}

// TestReplicaClient_Suites runs the shared suites on MinIO. With an empty
// path the keys start with "/" (upstream's concatenation) and MinIO stores
// them without it, as a file system would; the client then lists "0009/"
// rather than "/0009/".
func TestReplicaClient_Suites(t *testing.T) {
	clienttest.RunBackend(t, clienttest.Backend{Start: mustMinIO, V3: true, Leasing: true})
}

// TestReplicaClient_UnsignedPayload runs the suite with UNSIGNED-PAYLOAD and
// without Content-MD5, the other upstream request mode.
func TestReplicaClient_UnsignedPayload(t *testing.T) {
	fx := mustMinIO(t)
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		c := fx.NewClient(t, path).(*s3.ReplicaClient)
		c.SignPayload, c.RequireContentMD5 = false, false
		return c
	}, clienttest.Options{LargeFileSize: 6 << 20})
}

func TestReplicaClient_Init(t *testing.T) {
	client := func(set func(c *s3.ReplicaClient)) *s3.ReplicaClient {
		c := s3.NewReplicaClient()
		c.Bucket, c.Endpoint = "b", "http://127.0.0.1:1"
		set(c)
		return c
	}
	clienttest.RunInitCases(t, []clienttest.InitCase{
		{Name: "ErrNoBucket", Client: client(func(c *s3.ReplicaClient) { c.Bucket = "" }), WantErr: "bucket"},
		{Name: "ErrPartSize", Client: client(func(c *s3.ReplicaClient) { c.PartSize = 1024 }), WantErr: "part size"},
		{Name: "ErrSSEBoth", Client: client(func(c *s3.ReplicaClient) {
			c.SSECustomerKey, c.SSEKMSKeyID = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=", "k"
		}), WantErr: "SSE-KMS"},
		{Name: "ErrSSEKeyLength", Client: client(func(c *s3.ReplicaClient) { c.SSECustomerKey = "c2hvcnQ=" }), WantErr: "32 bytes"},
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	t.Setenv("LITESTREAM_S3_ENDPOINT", "")

	// A URL's client has the environment's credentials and, unless the URL
	// sets them itself, SignPayload and RequireContentMD5 on, as upstream.
	withEnv := func(c *s3.ReplicaClient) *s3.ReplicaClient {
		c.AccessKeyID, c.SecretAccessKey = "AKID", "SECRET"
		return c
	}
	signed := func(c *s3.ReplicaClient) *s3.ReplicaClient {
		c.SignPayload, c.RequireContentMD5 = true, true
		return withEnv(c)
	}
	clienttest.RunURLCases(t, "s3", []string{"Bucket", "Path", "Region", "Endpoint", "ForcePathStyle", "SkipVerify",
		"SignPayload", "RequireContentMD5", "StorageClass", "PartSize", "Concurrency",
		"SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5", "SSEKMSKeyID", "AccessKeyID", "SecretAccessKey",
	}, []clienttest.URLCase[*s3.ReplicaClient]{
		{URL: "s3://bucket/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Path: "db"})},
		{URL: "s3://bucket", Want: signed(&s3.ReplicaClient{Bucket: "bucket"})},
		{URL: "s3://bucket/a/b/../c/", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Path: "a/c"})},
		{URL: "s3://bucket.s3.eu-west-1.amazonaws.com/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Region: "eu-west-1", Path: "db"})},
		{URL: "s3://bucket.s3.amazonaws.com/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Path: "db"})},
		{URL: "s3://bucket.localhost:9000/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Region: "us-east-1", Endpoint: "http://localhost:9000", ForcePathStyle: true, Path: "db"})},
		{URL: "s3://bucket.minio.internal:9000/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Region: "us-east-1", Endpoint: "http://minio.internal:9000", ForcePathStyle: true, Path: "db"})},
		{URL: "s3://bucket.nyc3.digitaloceanspaces.com/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Region: "nyc3", Endpoint: "https://nyc3.digitaloceanspaces.com", Path: "db"})},
		{URL: "s3://bucket.s3.us-west-002.backblazeb2.com/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Region: "us-west-002", Endpoint: "https://s3.us-west-002.backblazeb2.com", ForcePathStyle: true, Path: "db"})},
		{URL: "s3://bucket.s3.filebase.com/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Region: "us-east-1", Endpoint: "https://s3.filebase.com", ForcePathStyle: true, Path: "db"})},
		{URL: "s3://bucket.s3.fr-par.scw.cloud/db", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Region: "fr-par", Endpoint: "https://s3.fr-par.scw.cloud", Path: "db"})},
		{URL: "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/db", Want: signed(&s3.ReplicaClient{Bucket: "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", Region: "us-west-2", Path: "db"})},
		{URL: "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap?region=eu-west-1", Want: signed(&s3.ReplicaClient{Bucket: "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", Region: "eu-west-1"})},
		{URL: "S3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/db?region=eu-west-1", Want: signed(&s3.ReplicaClient{Bucket: "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", Region: "eu-west-1", Path: "db"})},
		{URL: "s3://bucket/db?endpoint=127.0.0.1:9000", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Endpoint: "http://127.0.0.1:9000", ForcePathStyle: true, Path: "db"})},
		{URL: "s3://bucket/db?endpoint=s3.example.com&region=r1", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Endpoint: "https://s3.example.com", Region: "r1", ForcePathStyle: true, Path: "db"})},
		{URL: "s3://bucket/db?endpoint=http://h:1&forcePathStyle=false", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Endpoint: "http://h:1", Path: "db"})},
		{URL: "s3://bucket/db?endpoint=http://h:1&force-path-style=false", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Endpoint: "http://h:1", Path: "db"})},
		{URL: "s3://bucket/db?force-path-style=true", Want: signed(&s3.ReplicaClient{Bucket: "bucket", ForcePathStyle: true, Path: "db"})},
		{URL: "s3://bucket/db?skipVerify=true&signPayload=false&requireContentMD5=false", Want: withEnv(&s3.ReplicaClient{Bucket: "bucket", SkipVerify: true, SignPayload: false, RequireContentMD5: false, Path: "db"})},
		{URL: "s3://bucket/db?skip-verify=1&sign-payload=no&require-content-md5=f", Want: withEnv(&s3.ReplicaClient{Bucket: "bucket", SkipVerify: true, Path: "db"})},
		{URL: "s3://bucket/db?concurrency=4&partSize=10485760", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Concurrency: 4, PartSize: 10 << 20, Path: "db"})},
		{URL: "s3://bucket/db?part-size=6291456", Want: signed(&s3.ReplicaClient{Bucket: "bucket", PartSize: 6 << 20, Path: "db"})},
		{URL: "s3://bucket/db?storageClass=STANDARD_IA", Want: signed(&s3.ReplicaClient{Bucket: "bucket", StorageClass: "STANDARD_IA", Path: "db"})},
		{URL: "s3://bucket/db?storage-class=GLACIER_IR", Want: signed(&s3.ReplicaClient{Bucket: "bucket", StorageClass: "GLACIER_IR", Path: "db"})},
		{URL: "s3://bucket/db?sseCustomerAlgorithm=AES256&sseCustomerKey=k&sseCustomerKeyMD5=m", Want: signed(&s3.ReplicaClient{Bucket: "bucket", SSECustomerAlgorithm: "AES256", SSECustomerKey: "k", SSECustomerKeyMD5: "m", Path: "db"})},
		{URL: "s3://bucket/db?sse-customer-algorithm=AES256&sse-customer-key=k&sse-customer-key-md5=m", Want: signed(&s3.ReplicaClient{Bucket: "bucket", SSECustomerAlgorithm: "AES256", SSECustomerKey: "k", SSECustomerKeyMD5: "m", Path: "db"})},
		{URL: "s3://bucket/db?sseKmsKeyId=kms1", Want: signed(&s3.ReplicaClient{Bucket: "bucket", SSEKMSKeyID: "kms1", Path: "db"})},
		{URL: "s3://bucket/db?sse-kms-key-id=kms2", Want: signed(&s3.ReplicaClient{Bucket: "bucket", SSEKMSKeyID: "kms2", Path: "db"})},
		{URL: "s3://bucket/db?endpoint=fly.storage.tigris.dev", Want: withEnv(&s3.ReplicaClient{Bucket: "bucket", Endpoint: "https://fly.storage.tigris.dev", ForcePathStyle: true, SignPayload: true, Path: "db"})},
		{URL: "s3://bucket/db?endpoint=acct.r2.cloudflarestorage.com", Want: signed(&s3.ReplicaClient{Bucket: "bucket", Endpoint: "https://acct.r2.cloudflarestorage.com", ForcePathStyle: true, Concurrency: 2, Path: "db"})},

		{URL: "s3:///db", WantErr: "bucket required"},
		{URL: "s3://bucket/db?concurrency=x", WantErr: `"concurrency"`},
		{URL: "s3://bucket/db?partSize=-1", WantErr: `"partSize"`},
		{URL: "s3://bucket/db?part-size=0", WantErr: `"part-size"`},
		{URL: "s3://bucket/db?endpoint=http://", WantErr: "invalid endpoint"},
		{URL: "s3://arn:aws:s3::123:accesspoint/ap/db", WantErr: "no region"},
	})
}

func TestNewReplicaClientFromURL_EnvEndpoint(t *testing.T) {
	t.Setenv("LITESTREAM_S3_ENDPOINT", "127.0.0.1:9000")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", "lak")
	t.Setenv("LITESTREAM_SECRET_ACCESS_KEY", "lsk")
	rc, err := litestream.NewReplicaClientFromURL("s3://bucket/db")
	if err != nil {
		t.Fatal(err)
	}
	c := rc.(*s3.ReplicaClient)
	if c.Endpoint != "http://127.0.0.1:9000" || !c.ForcePathStyle {
		t.Fatalf("endpoint = %q pathStyle=%v", c.Endpoint, c.ForcePathStyle)
	}
	if c.AccessKeyID != "lak" || c.SecretAccessKey != "lsk" {
		t.Fatalf("credentials = %q/%q, want LITESTREAM_* values", c.AccessKeyID, c.SecretAccessKey)
	}
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		url, endpoint       string
		bucket, region, key string
	}{
		{"s3://bucket/a/b", "", "bucket", "", "a/b"},
		{"s3://bucket.s3.us-east-2.amazonaws.com/db", "", "bucket", "us-east-2", "db"},
		{"s3://bucket.s3.us-east-2.amazonaws.com/db", "http://x:1", "bucket.s3.us-east-2.amazonaws.com", "", "db"},
		{"s3://arn:aws:s3:eu-central-1:1:accesspoint/ap/k", "", "arn:aws:s3:eu-central-1:1:accesspoint/ap", "eu-central-1", "k"},
	} {
		bucket, region, key, err := s3.ParseURL(tt.url, tt.endpoint)
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		if bucket != tt.bucket || region != tt.region || key != tt.key {
			t.Fatalf("%s: got %q %q %q, want %q %q %q", tt.url, bucket, region, key, tt.bucket, tt.region, tt.key)
		}
	}
	if _, _, _, err := s3.ParseURL("gs://bucket/x", ""); err == nil {
		t.Fatal("want error for gs scheme")
	}
}

func TestParseHost(t *testing.T) {
	for _, tt := range []struct {
		host                     string
		bucket, region, endpoint string
		pathStyle                bool
	}{
		{"bucket", "bucket", "", "", false},
		{"bucket.s3.us-west-1.amazonaws.com", "bucket", "us-west-1", "", false},
		{"bucket.127.0.0.1:9000", "bucket", "us-east-1", "http://127.0.0.1:9000", true},
		{"bucket.ams3.digitaloceanspaces.com", "bucket", "ams3", "https://ams3.digitaloceanspaces.com", false},
	} {
		bucket, region, endpoint, pathStyle := s3.ParseHost(tt.host)
		if bucket != tt.bucket || region != tt.region || endpoint != tt.endpoint || pathStyle != tt.pathStyle {
			t.Fatalf("%s: got %q %q %q %v", tt.host, bucket, region, endpoint, pathStyle)
		}
	}
}
