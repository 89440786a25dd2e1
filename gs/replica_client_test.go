// Tests of the Google Cloud Storage client against fake-gcs-server.
package gs_test

import (
	"context"
	"io"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/gs"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
)

// mustFakeGCS starts fake-gcs-server and creates a bucket of the test's
// own.
func mustFakeGCS(t testing.TB) clienttest.Fixture {
	t.Helper()
	t.Setenv("STORAGE_EMULATOR_HOST", "") // use only the explicit options
	endpoint := testserver.StartFakeGCS(t)
	opts := []option.ClientOption{option.WithEndpoint(endpoint + "/storage/v1/"), option.WithoutAuthentication()}
	bucket := clienttest.UniqueName()
	ctx := context.Background()
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Bucket(bucket).Create(ctx, "test-project", nil); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	raw := client.Bucket(bucket)
	return clienttest.Fixture{
		NewClient: func(t testing.TB, path string) litestream.ReplicaClient {
			c := gs.NewReplicaClient()
			c.Bucket, c.Path, c.ClientOptions = bucket, path, opts
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
		Layout: clienttest.LayoutLevelDir,
		Names: func(t testing.TB) []string {
			t.Helper()
			var names []string
			it := raw.Objects(ctx, nil)
			for {
				attrs, err := it.Next()
				if err == iterator.Done {
					return names // in name order
				} else if err != nil {
					t.Fatalf("list bucket: %v", err)
				}
				names = append(names, attrs.Name)
			}
		},
		Get: func(name string) (io.ReadCloser, error) { return raw.Object(name).NewReader(ctx) },
		Put: func(t testing.TB, name string, data []byte) {
			t.Helper()
			w := raw.Object(name).NewWriter(ctx)
			if _, err := w.Write(data); err != nil {
				t.Fatalf("write %s: %v", name, err)
			} else if err := w.Close(); err != nil {
				t.Fatalf("write %s: %v", name, err)
			}
		},
		Stamp: func(t testing.TB, name string) string {
			t.Helper()
			attrs, err := raw.Object(name).Attrs(ctx)
			if err != nil {
				t.Fatalf("attrs of %s: %v", name, err)
			}
			return attrs.Metadata[gs.MetadataKeyTimestamp]
		},
	}
}

// TestReplicaClient_Suites runs the shared suites on fake-gcs-server. 20 MiB
// crosses the library's 16 MiB chunk size: a resumable upload. The listing
// carries the objects' metadata, so even without useMetadata it gives the
// header timestamps.
func TestReplicaClient_Suites(t *testing.T) {
	clienttest.RunBackend(t, clienttest.Backend{
		Start:       mustFakeGCS,
		Conformance: clienttest.Options{LargeFileSize: 20 << 20},
		KeyLayout:   clienttest.KeyLayoutOptions{ListedStamp: true},
		V3:          true,
		Leasing:     true,
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	clienttest.RunURLCases(t, "gs", []string{"Bucket", "Path"}, []clienttest.URLCase[*gs.ReplicaClient]{
		{URL: "gs://bucket/db", Want: &gs.ReplicaClient{Bucket: "bucket", Path: "db"}},
		{URL: "gs://bucket", Want: &gs.ReplicaClient{Bucket: "bucket"}},
		{URL: "gs://bucket/", Want: &gs.ReplicaClient{Bucket: "bucket"}},
		{URL: "gs://my.bucket/a/b/../c/", Want: &gs.ReplicaClient{Bucket: "my.bucket", Path: "a/c"}},

		{URL: "gs:///db", WantErr: "bucket required"},
		{URL: "gs://bucket/db?endpoint=x", WantErr: `unsupported query parameter "endpoint"`},
	})
}

func TestReplicaClient_Init(t *testing.T) {
	clienttest.RunInitCases(t, []clienttest.InitCase{{Name: "ErrNoBucket", Client: gs.NewReplicaClient(), WantErr: "bucket"}})
}
