// Tests of the Google Cloud Storage client against fake-gcs-server.
package gs_test

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/superfly/ltx"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/gs"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
)

var bucketN atomic.Int64

// MustFakeGCSBucket starts fake-gcs-server, creates a fresh bucket and
// returns a function making clients for it plus a raw storage client.
func MustFakeGCSBucket(t testing.TB) (newClient func(path string) *gs.ReplicaClient, raw *storage.BucketHandle) {
	t.Helper()
	t.Setenv("STORAGE_EMULATOR_HOST", "") // use only the explicit options
	endpoint := testserver.StartFakeGCS(t)
	opts := []option.ClientOption{option.WithEndpoint(endpoint + "/storage/v1/"), option.WithoutAuthentication()}
	bucket := fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e9, bucketN.Add(1))

	client, err := storage.NewClient(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Bucket(bucket).Create(context.Background(), "test-project", nil); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return func(path string) *gs.ReplicaClient {
		c := gs.NewReplicaClient()
		c.Bucket, c.Path, c.ClientOptions = bucket, path, opts
		t.Cleanup(func() { _ = c.Close() })
		return c
	}, client.Bucket(bucket)
}

func TestReplicaClient_Conformance(t *testing.T) {
	newClient, raw := MustFakeGCSBucket(t)
	// 20 MiB crosses the library's 16 MiB chunk size: a resumable upload.
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return newClient(path)
	}, clienttest.Options{LargeFileSize: 20 << 20, ListRaw: rawLister(raw), RootPath: true})
}

// rawLister lists a client's objects with the plain GCS SDK.
func rawLister(raw *storage.BucketHandle) clienttest.ListRawFunc {
	return func(t testing.TB, path string) []clienttest.RawObject {
		t.Helper()
		ctx := context.Background()
		var objects []clienttest.RawObject
		it := raw.Objects(ctx, &storage.Query{Prefix: path + "/"})
		for {
			attrs, err := it.Next()
			if err == iterator.Done {
				return objects
			} else if err != nil {
				t.Fatalf("list %s: %v", path, err)
			}
			objects = append(objects, clienttest.RawObject{
				Key:  strings.TrimPrefix(attrs.Name, path+"/"),
				Open: func() (io.ReadCloser, error) { return raw.Object(attrs.Name).NewReader(ctx) },
			})
		}
	}
}

func TestReplicaClient_KeyLayout(t *testing.T) {
	newClient, raw := MustFakeGCSBucket(t)
	ctx := context.Background()
	ts := time.Date(2022, 3, 4, 5, 6, 7, 8e6, time.UTC)
	for _, root := range []string{"db/replica", ""} {
		c := newClient(root)
		clienttest.MustWriteLayout(t, c, ts, []clienttest.LayoutFile{
			{Level: 0, Min: 1, Max: 1}, {Level: 1, Min: 2, Max: 0x1f}, {Level: 10, Min: 3, Max: 3},
		})
	}

	var got []string
	it := raw.Objects(ctx, nil)
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, attrs.Name)
		if v := attrs.Metadata[gs.MetadataKeyTimestamp]; v != "2022-03-04T05:06:07.008Z" {
			t.Fatalf("%s: metadata %s = %q", attrs.Name, gs.MetadataKeyTimestamp, v)
		}
	}
	sort.Strings(got)
	want := []string{
		"db/replica/ltx/0/0000000000000001-0000000000000001.ltx",
		"db/replica/ltx/1/0000000000000002-000000000000001f.ltx",
		"db/replica/ltx/10/0000000000000003-0000000000000003.ltx",
		"ltx/0/0000000000000001-0000000000000001.ltx",
		"ltx/1/0000000000000002-000000000000001f.ltx",
		"ltx/10/0000000000000003-0000000000000003.ltx",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("object names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Level 1 must not list level 10's files, with either root.
	for _, root := range []string{"db/replica", ""} {
		itr, err := newClient(root).LTXFiles(ctx, 1, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ltx.SliceFileIterator(itr)
		if err != nil {
			t.Fatal(err)
		} else if len(a) != 1 || a[0].MaxTXID != 0x1f || !a[0].CreatedAt.Equal(ts) {
			t.Fatalf("root %q: L1 listed %v", root, a)
		}
	}
}

func TestNewReplicaClientFromURL(t *testing.T) {
	for _, tt := range []struct{ url, bucket, path string }{
		{"gs://bucket/db", "bucket", "db"},
		{"gs://bucket", "bucket", ""},
		{"gs://bucket/", "bucket", ""},
		{"gs://my.bucket/a/b/../c/", "my.bucket", "a/c"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			rc, err := litestream.NewReplicaClientFromURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c := rc.(*gs.ReplicaClient)
			if c.Bucket != tt.bucket || c.Path != tt.path || c.Type() != "gs" {
				t.Fatalf("got bucket=%q path=%q, want %q %q", c.Bucket, c.Path, tt.bucket, tt.path)
			}
		})
	}
}

func TestNewReplicaClientFromURL_Errors(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"gs:///db", "bucket required"},
		{"gs://bucket/db?endpoint=x", `unsupported query parameter "endpoint"`},
	} {
		t.Run(tt.url, func(t *testing.T) {
			_, err := litestream.NewReplicaClientFromURL(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %s", err, tt.want)
			}
		})
	}
}

func TestReplicaClient_Init(t *testing.T) {
	t.Run("ErrNoBucket", func(t *testing.T) {
		if err := gs.NewReplicaClient().Init(context.Background()); err == nil || !strings.Contains(err.Error(), "bucket") {
			t.Fatalf("err = %v, want bucket required", err)
		}
	})
}
