// Tests of the NATS object store client against nats-server.
package nats_test

import (
	"context"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	lnats "github.com/benbjohnson/litestream/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// mustNATS starts nats-server and creates an object store bucket of the
// test's own.
func mustNATS(t testing.TB) clienttest.Fixture {
	t.Helper()
	srv := testserver.StartNATS(t)
	bucket := clienttest.UniqueName()
	store := mustObjectStore(t, srv, bucket)
	ctx := context.Background()
	return clienttest.Fixture{
		NewClient: func(t testing.TB, path string) litestream.ReplicaClient { return newTestClient(t, srv, bucket, path) },
		Layout:    clienttest.LayoutLevelDir,
		Names: func(t testing.TB) []string {
			t.Helper()
			infos, err := store.List(ctx)
			if err == jetstream.ErrNoObjectsFound {
				return nil
			} else if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, info := range infos {
				names = append(names, info.Name)
			}
			sort.Strings(names)
			return names
		},
		Get: func(name string) (io.ReadCloser, error) { return store.Get(ctx, name) },
		Put: func(t testing.TB, name string, data []byte) {
			t.Helper()
			if _, err := store.PutBytes(ctx, name, data); err != nil {
				t.Fatalf("put %s: %v", name, err)
			}
		},
		Stamp: func(t testing.TB, name string) string {
			t.Helper()
			info, err := store.GetInfo(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			return info.Headers.Get(lnats.HeaderKeyTimestamp)
		},
	}
}

// mustObjectStore connects to the server and creates a bucket.
func mustObjectStore(t testing.TB, srv *testserver.NATS, bucket string) jetstream.ObjectStore {
	t.Helper()
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: bucket})
	if err != nil {
		t.Fatalf("create object store %s: %v", bucket, err)
	}
	return store
}

// newTestClient returns a client for a bucket, closed when the test ends.
func newTestClient(t testing.TB, srv *testserver.NATS, bucket, path string) *lnats.ReplicaClient {
	c := lnats.NewReplicaClient()
	c.URL = srv.URL
	c.BucketName = bucket
	c.Path = path
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestReplicaClient_Suites runs the shared suites on nats-server.
func TestReplicaClient_Suites(t *testing.T) {
	t.Parallel()
	clienttest.RunBackend(t, clienttest.Backend{Start: mustNATS, Leasing: true})
}

// TestReplicaClient_DeleteAll checks the fix of upstream's DeleteAll, which
// emptied the whole bucket whatever the client's Path.
func TestReplicaClient_DeleteAll(t *testing.T) {
	t.Parallel()
	fx := mustNATS(t)
	ctx := context.Background()
	b := clienttest.MustLTX(t, 512, 1, 1, 1, time.Now())

	for _, path := range []string{"a", "ab", "b/a"} {
		clienttest.MustWrite(t, fx.NewClient(t, path), 0, 1, 1, b)
	}
	fx.Put(t, "unrelated.txt", []byte("not litestream's"))

	if err := fx.NewClient(t, "a").DeleteAll(ctx); err != nil {
		t.Fatalf("delete all: %v", err)
	}
	want := []string{
		"ab/ltx/0/0000000000000001-0000000000000001.ltx",
		"b/a/ltx/0/0000000000000001-0000000000000001.ltx",
		"unrelated.txt",
	}
	if got := fx.Names(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after DeleteAll of path a:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A client at the bucket root deletes its own ltx/ tree, nothing else.
	root := fx.NewClient(t, "")
	clienttest.MustWrite(t, root, 0, 1, 1, b)
	if err := root.DeleteAll(ctx); err != nil {
		t.Fatalf("delete all of root: %v", err)
	}
	if got := fx.Names(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after DeleteAll of the root:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReplicaClient_Init(t *testing.T) {
	t.Parallel()
	srv := testserver.StartNATS(t)
	mustObjectStore(t, srv, "exists")
	client := func(bucket string, set func(c *lnats.ReplicaClient)) *lnats.ReplicaClient {
		c := newTestClient(t, srv, bucket, "p")
		if set != nil {
			set(c)
		}
		return c
	}
	clienttest.RunInitCases(t, []clienttest.InitCase{
		{Name: "OK", Client: client("exists", nil)},
		{Name: "ErrMissingBucket", Client: client("missing", nil), WantErr: `"missing"`},
		{Name: "ErrNoBucket", Client: client("", nil), WantErr: "bucket name required"},
		{Name: "ErrHalfJWT", Client: client("exists", func(c *lnats.ReplicaClient) { c.JWT = "eyJ0" }), WantErr: "jwt and seed"},
		{Name: "ErrNoServer", Client: client("exists", func(c *lnats.ReplicaClient) {
			c.URL = "nats://" + testserver.Addr(testserver.FreePort(t))
			c.Timeout = time.Second
		}), WantErr: "connect"},
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	// A URL's client has these settings and the defaults.
	withDefaults := func(c *lnats.ReplicaClient) *lnats.ReplicaClient {
		c.MaxReconnects, c.ReconnectWait, c.Timeout = -1, 2*time.Second, 10*time.Second
		return c
	}
	clienttest.RunURLCases(t, "nats", []string{"URL", "BucketName", "Username", "Password", "Path", "MaxReconnects", "ReconnectWait", "Timeout"}, []clienttest.URLCase[*lnats.ReplicaClient]{
		{URL: "nats://localhost:4222/mybucket", Want: withDefaults(&lnats.ReplicaClient{URL: "nats://localhost:4222", BucketName: "mybucket"})},
		{URL: "nats://nats.example.com/mybucket", Want: withDefaults(&lnats.ReplicaClient{URL: "nats://nats.example.com", BucketName: "mybucket"})},
		{URL: "nats://alice:s3cret@localhost:4222/mybucket/", Want: withDefaults(&lnats.ReplicaClient{URL: "nats://localhost:4222", BucketName: "mybucket", Username: "alice", Password: "s3cret"})},
		{URL: "nats://alice@localhost/b", Want: withDefaults(&lnats.ReplicaClient{URL: "nats://localhost", BucketName: "b", Username: "alice"})},

		{URL: "nats://localhost:4222", WantErr: "bucket required"},
		{URL: "nats://localhost:4222/", WantErr: "bucket required"},
		{URL: "nats://localhost/a/b", WantErr: "must not contain '/'"},
		{URL: "nats:///bucket", WantErr: "host required"},
	})
}
