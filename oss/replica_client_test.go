// Tests of the OSS client against the local OSS test server.
package oss_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	aliyun "github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/ossserver"
	"github.com/benbjohnson/litestream/oss"
)

// mustOSS starts an OSS protocol server and creates a bucket of the test's
// own.
func mustOSS(t testing.TB) clienttest.Fixture {
	t.Helper()
	endpoint, ak, sk := ossserver.Start(t)
	name := clienttest.UniqueName()
	client, err := aliyun.New(endpoint, ak, sk)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CreateBucket(name); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	raw, err := client.Bucket(name)
	if err != nil {
		t.Fatal(err)
	}
	return clienttest.Fixture{
		NewClient: func(t testing.TB, path string) litestream.ReplicaClient {
			c := oss.NewReplicaClient()
			c.AccessKeyID, c.AccessKeySecret = ak, sk
			c.Bucket, c.Path, c.Endpoint = name, path, endpoint
			return c
		},
		Layout: clienttest.LayoutHexLevel,
		Names: func(t testing.TB) []string {
			t.Helper()
			var names []string
			var opts []aliyun.Option
			for {
				res, err := raw.ListObjectsV2(opts...)
				if err != nil {
					t.Fatalf("list bucket: %v", err)
				}
				for _, obj := range res.Objects {
					names = append(names, obj.Key)
				}
				if !res.IsTruncated {
					return names // in key order
				}
				opts = []aliyun.Option{aliyun.ContinuationToken(res.NextContinuationToken)}
			}
		},
		Get: func(name string) (io.ReadCloser, error) { return raw.GetObject(name) },
		Stamp: func(t testing.TB, name string) string {
			t.Helper()
			h, err := raw.GetObjectDetailedMeta(name)
			if err != nil {
				t.Fatalf("head %s: %v", name, err)
			}
			return h.Get("X-Oss-Meta-Litestream-Timestamp")
		},
	}
}

// TestReplicaClient_Suites runs the shared suites on the OSS test server.
// With an empty root the keys do not start with "/" as upstream's would:
// OSS rejects such names.
func TestReplicaClient_Suites(t *testing.T) {
	clienttest.RunBackend(t, clienttest.Backend{Start: mustOSS})
}

// TestReplicaClient_MultipartConcurrency uploads a file of more parts than
// the upload concurrency and reads it back whole.
func TestReplicaClient_MultipartConcurrency(t *testing.T) {
	c := mustOSS(t).NewClient(t, "db").(*oss.ReplicaClient)
	c.Concurrency = 2
	b := clienttest.MustLTX(t, 65536, 1, 1, 400, time.Now()) // ~26 MiB: 6 parts
	if info := clienttest.MustWrite(t, c, 0, 1, 1, b); info.Size != int64(len(b)) {
		t.Fatalf("size = %d, want %d", info.Size, len(b))
	}
	if got := clienttest.MustRead(t, c, 0, 1, 1, 0, 0); !bytes.Equal(got, b) {
		t.Fatalf("read back %d bytes, want %d identical", len(got), len(b))
	}
}

func TestReplicaClient_WrongSecret(t *testing.T) {
	c := mustOSS(t).NewClient(t, "db").(*oss.ReplicaClient)
	c.AccessKeySecret = "not-the-secret"
	ctx := context.Background()

	_, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(clienttest.MustLTX(t, 512, 1, 1, 1, time.Now())))
	var se aliyun.ServiceError
	if !errors.As(err, &se) || se.StatusCode != 403 || se.Code != "SignatureDoesNotMatch" {
		t.Fatalf("write with wrong secret: err = %v, want 403 SignatureDoesNotMatch", err)
	}
	if _, err := c.LTXFiles(ctx, 0, 0, false); err != nil {
		t.Fatal(err) // lazy: the request happens on Next
	}
	itr, _ := c.LTXFiles(ctx, 0, 0, false)
	if itr.Next() || !errors.As(itr.Close(), &se) || se.Code != "SignatureDoesNotMatch" {
		t.Fatalf("list with wrong secret: err = %v, want SignatureDoesNotMatch", itr.Err())
	}
}

func TestNewReplicaClientFromURL(t *testing.T) {
	clienttest.RunURLCases(t, "oss", []string{"Bucket", "Region", "Endpoint", "Path"}, []clienttest.URLCase[*oss.ReplicaClient]{
		{URL: "oss://bucket/db", Want: &oss.ReplicaClient{Bucket: "bucket", Path: "db"}},
		{URL: "oss://bucket", Want: &oss.ReplicaClient{Bucket: "bucket"}},
		{URL: "oss://bucket/a/../b/c/", Want: &oss.ReplicaClient{Bucket: "bucket", Path: "b/c"}},
		{URL: "oss://bucket.oss-cn-shanghai.aliyuncs.com/db", Want: &oss.ReplicaClient{Bucket: "bucket", Region: "cn-shanghai", Endpoint: "https://oss-cn-shanghai.aliyuncs.com", Path: "db"}},
		{URL: "oss://bucket.oss-cn-beijing-internal.aliyuncs.com/db", Want: &oss.ReplicaClient{Bucket: "bucket", Region: "cn-beijing", Endpoint: "https://oss-cn-beijing-internal.aliyuncs.com", Path: "db"}},
		{URL: "oss://bucket/db?endpoint=127.0.0.1:9000", Want: &oss.ReplicaClient{Bucket: "bucket", Endpoint: "http://127.0.0.1:9000", Path: "db"}},
		{URL: "oss://bucket/db?endpoint=oss-eu-west-1.aliyuncs.com&region=eu-west-1", Want: &oss.ReplicaClient{Bucket: "bucket", Region: "eu-west-1", Endpoint: "https://oss-eu-west-1.aliyuncs.com", Path: "db"}},
		{URL: "oss://bucket/db?region=ap-southeast-1", Want: &oss.ReplicaClient{Bucket: "bucket", Region: "ap-southeast-1", Path: "db"}},

		{URL: "oss:///db", WantErr: "bucket required"},
		{URL: "oss://bucket/db?foo=bar", WantErr: `unsupported query parameter "foo"`},
		{URL: "oss://bucket/db?endpoint=http://", WantErr: "invalid endpoint"},
	})
}

// oss's EnsureEndpointScheme keeps any scheme and otherwise follows the
// root's rule, whose cases replica_url_test.go covers.
func TestEnsureEndpointScheme(t *testing.T) {
	for in, want := range map[string]string{
		"oss-cn-hangzhou.aliyuncs.com": "https://oss-cn-hangzhou.aliyuncs.com",
		"oss.localhost:9000":           "http://oss.localhost:9000",
		"custom+tls://10.0.0.5":        "custom+tls://10.0.0.5",
	} {
		if got := oss.EnsureEndpointScheme(in); got != want {
			t.Errorf("EnsureEndpointScheme(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseURL(t *testing.T) {
	bucket, region, key, err := oss.ParseURL("oss://b.oss-cn-hangzhou.aliyuncs.com/x/y")
	if err != nil || bucket != "b" || region != "cn-hangzhou" || key != "x/y" {
		t.Fatalf("got %q %q %q %v", bucket, region, key, err)
	}
	if _, _, _, err := oss.ParseURL("s3://b/x"); err == nil {
		t.Fatal("want error for s3 scheme")
	}
}

func TestReplicaClient_Init(t *testing.T) {
	clienttest.RunInitCases(t, []clienttest.InitCase{{Name: "ErrNoBucket", Client: oss.NewReplicaClient(), WantErr: "bucket"}})
}

// TestReplicaClient_NewLeaser_Unsupported: the oss backend refuses leases
// with a clear error.
func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	client := oss.NewReplicaClient()
	clienttest.RunLeaserUnsupported(t, "oss", client, client.NewLeaser())
}
