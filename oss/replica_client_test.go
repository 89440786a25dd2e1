// Tests of the OSS client against the local OSS test server.
package oss_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	aliyun "github.com/aliyun/aliyun-oss-go-sdk/oss"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/ossserver"
	"github.com/benbjohnson/litestream/oss"
)

var bucketN atomic.Int64

// MustOSSBucket starts an OSS protocol server, creates a fresh bucket and
// returns a function making clients for it plus a raw SDK bucket.
func MustOSSBucket(t testing.TB) (newClient func(path string) *oss.ReplicaClient, raw *aliyun.Bucket, endpoint string) {
	t.Helper()
	endpoint, ak, sk := ossserver.Start(t)
	name := fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e9, bucketN.Add(1))
	client, err := aliyun.New(endpoint, ak, sk)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CreateBucket(name); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if raw, err = client.Bucket(name); err != nil {
		t.Fatal(err)
	}
	return func(path string) *oss.ReplicaClient {
		c := oss.NewReplicaClient()
		c.AccessKeyID, c.AccessKeySecret = ak, sk
		c.Bucket, c.Path, c.Endpoint = name, path, endpoint
		return c
	}, raw, endpoint
}

func TestReplicaClient_Conformance(t *testing.T) {
	newClient, raw, _ := MustOSSBucket(t)
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return newClient(path)
	}, clienttest.Options{ListRaw: rawLister(raw), RawLayout: clienttest.LayoutHexLevel, RootPath: true})
}

// rawLister lists a client's objects with the plain OSS SDK.
func rawLister(raw *aliyun.Bucket) clienttest.ListRawFunc {
	return func(t testing.TB, path string) []clienttest.RawObject {
		t.Helper()
		var objects []clienttest.RawObject
		opts := []aliyun.Option{aliyun.Prefix(path + "/")}
		for {
			res, err := raw.ListObjectsV2(opts...)
			if err != nil {
				t.Fatalf("list %s: %v", path, err)
			}
			for _, obj := range res.Objects {
				objects = append(objects, clienttest.RawObject{
					Key:  strings.TrimPrefix(obj.Key, path+"/"),
					Open: func() (io.ReadCloser, error) { return raw.GetObject(obj.Key) },
				})
			}
			if !res.IsTruncated {
				return objects
			}
			opts = []aliyun.Option{aliyun.Prefix(path + "/"), aliyun.ContinuationToken(res.NextContinuationToken)}
		}
	}
}

// TestReplicaClient_MultipartConcurrency uploads a file of more parts than
// the upload concurrency and reads it back whole.
func TestReplicaClient_MultipartConcurrency(t *testing.T) {
	newClient, _, _ := MustOSSBucket(t)
	c := newClient("db")
	c.Concurrency = 2
	ctx := context.Background()
	b := clienttest.MustLTX(t, 65536, 1, 1, 400, time.Now()) // ~26 MiB: 6 parts
	info, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	} else if info.Size != int64(len(b)) {
		t.Fatalf("size = %d, want %d", info.Size, len(b))
	}
	rc, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, err = got.ReadFrom(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(got.Bytes(), b) {
		t.Fatalf("read back %d bytes (err %v), want %d identical", got.Len(), err, len(b))
	}
}

func TestReplicaClient_KeyLayout(t *testing.T) {
	newClient, raw, _ := MustOSSBucket(t)
	ctx := context.Background()
	ts := time.Date(2022, 3, 4, 5, 6, 7, 8e6, time.UTC)
	for _, root := range []string{"db/replica", ""} {
		c := newClient(root)
		clienttest.MustWriteLayout(t, c, ts, []clienttest.LayoutFile{
			{Level: 0, Min: 1, Max: 1}, {Level: 1, Min: 2, Max: 0x1f}, {Level: 10, Min: 3, Max: 3},
		})
	}
	res, err := raw.ListObjectsV2()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, obj := range res.Objects {
		got = append(got, obj.Key)
	}
	sort.Strings(got)
	// With an empty root the keys do not start with "/" as upstream's would:
	// OSS rejects such names.
	want := []string{
		"0000/0000000000000001-0000000000000001.ltx",
		"0001/0000000000000002-000000000000001f.ltx",
		"000a/0000000000000003-0000000000000003.ltx",
		"db/replica/0000/0000000000000001-0000000000000001.ltx",
		"db/replica/0001/0000000000000002-000000000000001f.ltx",
		"db/replica/000a/0000000000000003-0000000000000003.ltx",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h, err := raw.GetObjectDetailedMeta(want[3])
	if err != nil {
		t.Fatal(err)
	} else if v := h.Get("X-Oss-Meta-Litestream-Timestamp"); v != "2022-03-04T05:06:07.008Z" {
		t.Fatalf("metadata = %q", v)
	}
	for _, root := range []string{"db/replica", ""} {
		itr, err := newClient(root).LTXFiles(ctx, 10, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ltx.SliceFileIterator(itr)
		if err != nil {
			t.Fatal(err)
		} else if len(a) != 1 || a[0].MinTXID != 3 || !a[0].CreatedAt.Equal(ts) {
			t.Fatalf("root %q: L10 listed %v", root, a)
		}
	}
}

func TestReplicaClient_WrongSecret(t *testing.T) {
	newClient, _, _ := MustOSSBucket(t)
	c := newClient("db")
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
	for _, tt := range []struct {
		url                            string
		bucket, region, endpoint, path string
	}{
		{"oss://bucket/db", "bucket", "", "", "db"},
		{"oss://bucket", "bucket", "", "", ""},
		{"oss://bucket/a/../b/c/", "bucket", "", "", "b/c"},
		{"oss://bucket.oss-cn-shanghai.aliyuncs.com/db", "bucket", "cn-shanghai", "https://oss-cn-shanghai.aliyuncs.com", "db"},
		{"oss://bucket.oss-cn-beijing-internal.aliyuncs.com/db", "bucket", "cn-beijing", "https://oss-cn-beijing-internal.aliyuncs.com", "db"},
		{"oss://bucket/db?endpoint=127.0.0.1:9000", "bucket", "", "http://127.0.0.1:9000", "db"},
		{"oss://bucket/db?endpoint=oss-eu-west-1.aliyuncs.com&region=eu-west-1", "bucket", "eu-west-1", "https://oss-eu-west-1.aliyuncs.com", "db"},
		{"oss://bucket/db?region=ap-southeast-1", "bucket", "ap-southeast-1", "", "db"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			rc, err := litestream.NewReplicaClientFromURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c := rc.(*oss.ReplicaClient)
			if c.Bucket != tt.bucket || c.Region != tt.region || c.Endpoint != tt.endpoint || c.Path != tt.path {
				t.Fatalf("got bucket=%q region=%q endpoint=%q path=%q", c.Bucket, c.Region, c.Endpoint, c.Path)
			}
		})
	}
}

func TestNewReplicaClientFromURL_Errors(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"oss:///db", "bucket required"},
		{"oss://bucket/db?foo=bar", `unsupported query parameter "foo"`},
		{"oss://bucket/db?endpoint=http://", "invalid endpoint"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			_, err := litestream.NewReplicaClientFromURL(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %s", err, tt.want)
			}
		})
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
	t.Run("ErrNoBucket", func(t *testing.T) {
		if err := oss.NewReplicaClient().Init(context.Background()); err == nil || !strings.Contains(err.Error(), "bucket") {
			t.Fatalf("err = %v, want bucket required", err)
		}
	})
}
