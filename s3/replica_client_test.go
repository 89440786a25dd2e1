// Tests of the S3 client against MinIO.
package s3_test

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	"github.com/benbjohnson/litestream/s3"
)

var bucketN atomic.Int64

// MustMinIOBucket starts MinIO, creates a fresh bucket and returns a
// function making clients for it.
func MustMinIOBucket(t testing.TB) (newClient func(path string) *s3.ReplicaClient, raw *awss3.Client, bucket string) {
	t.Helper()
	endpoint, ak, sk := testserver.StartMinIO(t)
	bucket = fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e9, bucketN.Add(1))

	raw = awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, ""),
	})
	if _, err := raw.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return func(path string) *s3.ReplicaClient {
		c := s3.NewReplicaClient()
		c.AccessKeyID, c.SecretAccessKey = ak, sk
		c.Bucket, c.Path = bucket, path
		c.Endpoint, c.ForcePathStyle = endpoint, true
		return c
	}, raw, bucket
}

func TestReplicaClient_Conformance(t *testing.T) {
	newClient, raw, bucket := MustMinIOBucket(t)
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return newClient(path)
	}, clienttest.Options{ListRaw: rawLister(raw, bucket), RawLayout: clienttest.LayoutHexLevel, RootPath: true})
}

// rawLister lists a client's objects with the plain S3 SDK.
func rawLister(raw *awss3.Client, bucket string) clienttest.ListRawFunc {
	return func(t testing.TB, path string) []clienttest.RawObject {
		t.Helper()
		ctx := context.Background()
		var objects []clienttest.RawObject
		p := awss3.NewListObjectsV2Paginator(raw, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(path + "/")})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("list %s: %v", path, err)
			}
			for _, obj := range page.Contents {
				key := obj.Key
				objects = append(objects, clienttest.RawObject{
					Key: strings.TrimPrefix(aws.ToString(key), path+"/"),
					Open: func() (io.ReadCloser, error) {
						out, err := raw.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: key})
						if err != nil {
							return nil, err
						}
						return out.Body, nil
					},
				})
			}
		}
		return objects
	}
}

// TestReplicaClient_UnsignedPayload runs the suite with UNSIGNED-PAYLOAD and
// without Content-MD5, the other upstream request mode.
func TestReplicaClient_UnsignedPayload(t *testing.T) {
	newClient, _, _ := MustMinIOBucket(t)
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		c := newClient(path)
		c.SignPayload, c.RequireContentMD5 = false, false
		return c
	}, clienttest.Options{LargeFileSize: 6 << 20})
}

func TestReplicaClient_KeyLayout(t *testing.T) {
	newClient, raw, bucket := MustMinIOBucket(t)
	ctx := context.Background()
	ts := time.Date(2022, 3, 4, 5, 6, 7, 8e6, time.UTC)

	for _, root := range []string{"db/replica", ""} {
		c := newClient(root)
		clienttest.MustWriteLayout(t, c, ts, []clienttest.LayoutFile{
			{Level: 0, Min: 1, Max: 1}, {Level: 1, Min: 2, Max: 0x1f}, {Level: 9, Min: 1, Max: 0xabc}, {Level: 10, Min: 3, Max: 3},
		})
	}

	out, err := raw.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, obj := range out.Contents {
		got = append(got, aws.ToString(obj.Key))
	}
	sort.Strings(got)
	want := []string{
		"/0000/0000000000000001-0000000000000001.ltx",
		"/0001/0000000000000002-000000000000001f.ltx",
		"/0009/0000000000000001-0000000000000abc.ltx",
		"/000a/0000000000000003-0000000000000003.ltx",
		"db/replica/0000/0000000000000001-0000000000000001.ltx",
		"db/replica/0001/0000000000000002-000000000000001f.ltx",
		"db/replica/0009/0000000000000001-0000000000000abc.ltx",
		"db/replica/000a/0000000000000003-0000000000000003.ltx",
	}
	sort.Strings(want)
	// An empty path gives keys starting with "/" (upstream's concatenation);
	// MinIO stores them without the leading slash, as a file system would.
	for i, key := range got {
		if strings.HasPrefix(key, "0") {
			got[i] = "/" + key
		}
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Both roots read back on MinIO: with an empty path the listing prefix
	// "/0009/" no longer matches the slash-stripped keys, and the client
	// lists "0009/" instead.
	for _, root := range []string{"db/replica", ""} {
		itr, err := newClient(root).LTXFiles(ctx, 9, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ltx.SliceFileIterator(itr)
		if err != nil {
			t.Fatal(err)
		} else if len(a) != 1 || a[0].MaxTXID != 0xabc || !a[0].CreatedAt.Equal(ts) {
			t.Fatalf("root %q: L9 listed %v", root, a)
		}
	}

	head, err := raw.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(want[4])})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := head.Metadata[s3.MetadataKeyTimestamp], "2022-03-04T05:06:07.008Z"; got != want {
		t.Fatalf("metadata %s = %q, want %q", s3.MetadataKeyTimestamp, got, want)
	}
}

func TestReplicaClient_Init(t *testing.T) {
	t.Run("ErrNoBucket", func(t *testing.T) {
		c := s3.NewReplicaClient()
		if err := c.Init(context.Background()); err == nil || !strings.Contains(err.Error(), "bucket") {
			t.Fatalf("err = %v, want bucket required", err)
		}
	})
	t.Run("ErrPartSize", func(t *testing.T) {
		c := s3.NewReplicaClient()
		c.Bucket, c.Endpoint, c.PartSize = "b", "http://127.0.0.1:1", 1024
		if err := c.Init(context.Background()); err == nil || !strings.Contains(err.Error(), "part size") {
			t.Fatalf("err = %v, want part size error", err)
		}
	})
	t.Run("ErrSSEBoth", func(t *testing.T) {
		c := s3.NewReplicaClient()
		c.Bucket, c.Endpoint = "b", "http://127.0.0.1:1"
		c.SSECustomerKey, c.SSEKMSKeyID = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=", "k"
		if err := c.Init(context.Background()); err == nil || !strings.Contains(err.Error(), "SSE-KMS") {
			t.Fatalf("err = %v, want SSE conflict", err)
		}
	})
	t.Run("ErrSSEKeyLength", func(t *testing.T) {
		c := s3.NewReplicaClient()
		c.Bucket, c.Endpoint, c.SSECustomerKey = "b", "http://127.0.0.1:1", "c2hvcnQ="
		if err := c.Init(context.Background()); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Fatalf("err = %v, want key length error", err)
		}
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	t.Setenv("LITESTREAM_S3_ENDPOINT", "")

	for _, tt := range []struct {
		url    string
		want   *s3.ReplicaClient
		custom bool // the URL sets SignPayload/RequireContentMD5 itself
	}{
		{"s3://bucket/db", &s3.ReplicaClient{Bucket: "bucket", Path: "db"}, false},
		{"s3://bucket", &s3.ReplicaClient{Bucket: "bucket"}, false},
		{"s3://bucket/a/b/../c/", &s3.ReplicaClient{Bucket: "bucket", Path: "a/c"}, false},
		{"s3://bucket.s3.eu-west-1.amazonaws.com/db", &s3.ReplicaClient{Bucket: "bucket", Region: "eu-west-1", Path: "db"}, false},
		{"s3://bucket.s3.amazonaws.com/db", &s3.ReplicaClient{Bucket: "bucket", Path: "db"}, false},
		{"s3://bucket.localhost:9000/db", &s3.ReplicaClient{Bucket: "bucket", Region: "us-east-1", Endpoint: "http://localhost:9000", ForcePathStyle: true, Path: "db"}, false},
		{"s3://bucket.minio.internal:9000/db", &s3.ReplicaClient{Bucket: "bucket", Region: "us-east-1", Endpoint: "http://minio.internal:9000", ForcePathStyle: true, Path: "db"}, false},
		{"s3://bucket.nyc3.digitaloceanspaces.com/db", &s3.ReplicaClient{Bucket: "bucket", Region: "nyc3", Endpoint: "https://nyc3.digitaloceanspaces.com", Path: "db"}, false},
		{"s3://bucket.s3.us-west-002.backblazeb2.com/db", &s3.ReplicaClient{Bucket: "bucket", Region: "us-west-002", Endpoint: "https://s3.us-west-002.backblazeb2.com", ForcePathStyle: true, Path: "db"}, false},
		{"s3://bucket.s3.filebase.com/db", &s3.ReplicaClient{Bucket: "bucket", Region: "us-east-1", Endpoint: "https://s3.filebase.com", ForcePathStyle: true, Path: "db"}, false},
		{"s3://bucket.s3.fr-par.scw.cloud/db", &s3.ReplicaClient{Bucket: "bucket", Region: "fr-par", Endpoint: "https://s3.fr-par.scw.cloud", Path: "db"}, false},
		{"s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/db", &s3.ReplicaClient{Bucket: "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", Region: "us-west-2", Path: "db"}, false},
		{"s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap?region=eu-west-1", &s3.ReplicaClient{Bucket: "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", Region: "eu-west-1"}, false},
		{"S3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/db?region=eu-west-1", &s3.ReplicaClient{Bucket: "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", Region: "eu-west-1", Path: "db"}, false},
		{"s3://bucket/db?endpoint=127.0.0.1:9000", &s3.ReplicaClient{Bucket: "bucket", Endpoint: "http://127.0.0.1:9000", ForcePathStyle: true, Path: "db"}, false},
		{"s3://bucket/db?endpoint=s3.example.com&region=r1", &s3.ReplicaClient{Bucket: "bucket", Endpoint: "https://s3.example.com", Region: "r1", ForcePathStyle: true, Path: "db"}, false},
		{"s3://bucket/db?endpoint=http://h:1&forcePathStyle=false", &s3.ReplicaClient{Bucket: "bucket", Endpoint: "http://h:1", Path: "db"}, false},
		{"s3://bucket/db?endpoint=http://h:1&force-path-style=false", &s3.ReplicaClient{Bucket: "bucket", Endpoint: "http://h:1", Path: "db"}, false},
		{"s3://bucket/db?force-path-style=true", &s3.ReplicaClient{Bucket: "bucket", ForcePathStyle: true, Path: "db"}, false},
		{"s3://bucket/db?skipVerify=true&signPayload=false&requireContentMD5=false", &s3.ReplicaClient{Bucket: "bucket", SkipVerify: true, SignPayload: false, RequireContentMD5: false, Path: "db"}, true},
		{"s3://bucket/db?skip-verify=1&sign-payload=no&require-content-md5=f", &s3.ReplicaClient{Bucket: "bucket", SkipVerify: true, Path: "db"}, true},
		{"s3://bucket/db?concurrency=4&partSize=10485760", &s3.ReplicaClient{Bucket: "bucket", Concurrency: 4, PartSize: 10 << 20, Path: "db"}, false},
		{"s3://bucket/db?part-size=6291456", &s3.ReplicaClient{Bucket: "bucket", PartSize: 6 << 20, Path: "db"}, false},
		{"s3://bucket/db?storageClass=STANDARD_IA", &s3.ReplicaClient{Bucket: "bucket", StorageClass: "STANDARD_IA", Path: "db"}, false},
		{"s3://bucket/db?storage-class=GLACIER_IR", &s3.ReplicaClient{Bucket: "bucket", StorageClass: "GLACIER_IR", Path: "db"}, false},
		{"s3://bucket/db?sseCustomerAlgorithm=AES256&sseCustomerKey=k&sseCustomerKeyMD5=m", &s3.ReplicaClient{Bucket: "bucket", SSECustomerAlgorithm: "AES256", SSECustomerKey: "k", SSECustomerKeyMD5: "m", Path: "db"}, false},
		{"s3://bucket/db?sse-customer-algorithm=AES256&sse-customer-key=k&sse-customer-key-md5=m", &s3.ReplicaClient{Bucket: "bucket", SSECustomerAlgorithm: "AES256", SSECustomerKey: "k", SSECustomerKeyMD5: "m", Path: "db"}, false},
		{"s3://bucket/db?sseKmsKeyId=kms1", &s3.ReplicaClient{Bucket: "bucket", SSEKMSKeyID: "kms1", Path: "db"}, false},
		{"s3://bucket/db?sse-kms-key-id=kms2", &s3.ReplicaClient{Bucket: "bucket", SSEKMSKeyID: "kms2", Path: "db"}, false},
		{"s3://bucket/db?endpoint=fly.storage.tigris.dev", &s3.ReplicaClient{Bucket: "bucket", Endpoint: "https://fly.storage.tigris.dev", ForcePathStyle: true, SignPayload: true, Path: "db"}, true},
		{"s3://bucket/db?endpoint=acct.r2.cloudflarestorage.com", &s3.ReplicaClient{Bucket: "bucket", Endpoint: "https://acct.r2.cloudflarestorage.com", ForcePathStyle: true, Concurrency: 2, Path: "db"}, false},
	} {
		t.Run(tt.url, func(t *testing.T) {
			rc, err := litestream.NewReplicaClientFromURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got := rc.(*s3.ReplicaClient)
			want := tt.want
			if !tt.custom {
				want.SignPayload, want.RequireContentMD5 = true, true
			}
			want.AccessKeyID, want.SecretAccessKey = "AKID", "SECRET"
			if g, w := configString(got), configString(want); g != w {
				t.Fatalf("got  %s\nwant %s", g, w)
			}
		})
	}
}

// configString formats a client's exported configuration for comparison.
func configString(c *s3.ReplicaClient) string {
	return fmt.Sprintf("bucket=%q path=%q region=%q endpoint=%q pathStyle=%v skipVerify=%v sign=%v md5=%v class=%q part=%d conc=%d ssec=%q/%q/%q kms=%q creds=%q/%q",
		c.Bucket, c.Path, c.Region, c.Endpoint, c.ForcePathStyle, c.SkipVerify, c.SignPayload, c.RequireContentMD5,
		c.StorageClass, c.PartSize, c.Concurrency, c.SSECustomerAlgorithm, c.SSECustomerKey, c.SSECustomerKeyMD5,
		c.SSEKMSKeyID, c.AccessKeyID, c.SecretAccessKey)
}

func TestNewReplicaClientFromURL_Errors(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"s3:///db", "bucket required"},
		{"s3://bucket/db?concurrency=x", `"concurrency"`},
		{"s3://bucket/db?partSize=-1", `"partSize"`},
		{"s3://bucket/db?part-size=0", `"part-size"`},
		{"s3://bucket/db?endpoint=http://", "invalid endpoint"},
		{"s3://arn:aws:s3::123:accesspoint/ap/db", "no region"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			_, err := litestream.NewReplicaClientFromURL(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %s", err, tt.want)
			}
		})
	}
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
