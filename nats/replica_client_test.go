// Tests of the NATS object store client against nats-server.
package nats_test

import (
	"bytes"
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

// MustObjectStore connects to the server and creates a bucket.
func MustObjectStore(t testing.TB, srv *testserver.NATS, bucket string) jetstream.ObjectStore {
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

// NewTestClient returns a client for a bucket, closed when the test ends.
func NewTestClient(t testing.TB, srv *testserver.NATS, bucket, path string) *lnats.ReplicaClient {
	c := lnats.NewReplicaClient()
	c.URL = srv.URL
	c.BucketName = bucket
	c.Path = path
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// MustNames lists every live object name in the bucket, sorted.
func MustNames(t testing.TB, store jetstream.ObjectStore) []string {
	t.Helper()
	infos, err := store.List(context.Background())
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
}

func TestReplicaClient_Conformance(t *testing.T) {
	t.Parallel()
	srv := testserver.StartNATS(t)
	store := MustObjectStore(t, srv, "conformance")
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return NewTestClient(t, srv, "conformance", path)
	}, clienttest.Options{ListRaw: rawLister(store), RootPath: true})
}

// rawLister lists a client's objects with the plain JetStream object store.
func rawLister(store jetstream.ObjectStore) clienttest.ListRawFunc {
	return func(t testing.TB, path string) []clienttest.RawObject {
		t.Helper()
		ctx := context.Background()
		var objects []clienttest.RawObject
		for _, name := range MustNames(t, store) {
			if key, ok := strings.CutPrefix(name, path+"/"); ok {
				objects = append(objects, clienttest.RawObject{
					Key:  key,
					Open: func() (io.ReadCloser, error) { return store.Get(ctx, name) },
				})
			}
		}
		return objects
	}
}

// TestReplicaClient_KeyLayout checks the raw object names and headers that
// upstream Litestream reads and writes.
func TestReplicaClient_KeyLayout(t *testing.T) {
	t.Parallel()
	srv := testserver.StartNATS(t)
	store := MustObjectStore(t, srv, "layout")
	ctx := context.Background()
	ts := time.Date(2022, 3, 4, 5, 6, 7, 890e6, time.UTC)
	for _, path := range []string{"db/replica", ""} {
		c := NewTestClient(t, srv, "layout", path)
		clienttest.MustWriteLayout(t, c, ts, []clienttest.LayoutFile{
			{Level: 0, Min: 1, Max: 1}, {Level: 1, Min: 1, Max: 0x2f}, {Level: 9, Min: 1, Max: 0x100},
		})
	}
	want := []string{
		"db/replica/ltx/0/0000000000000001-0000000000000001.ltx",
		"db/replica/ltx/1/0000000000000001-000000000000002f.ltx",
		"db/replica/ltx/9/0000000000000001-0000000000000100.ltx",
		"ltx/0/0000000000000001-0000000000000001.ltx",
		"ltx/1/0000000000000001-000000000000002f.ltx",
		"ltx/9/0000000000000001-0000000000000100.ltx",
	}
	if got := MustNames(t, store); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("object names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	info, err := store.GetInfo(ctx, want[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Headers.Get(lnats.HeaderKeyTimestamp); got != "2022-03-04T05:06:07.89Z" {
		t.Fatalf("%s header = %q, want 2022-03-04T05:06:07.89Z", lnats.HeaderKeyTimestamp, got)
	}
}

// TestReplicaClient_DeleteAll checks the fix of upstream's DeleteAll, which
// emptied the whole bucket whatever the client's Path.
func TestReplicaClient_DeleteAll(t *testing.T) {
	t.Parallel()
	srv := testserver.StartNATS(t)
	store := MustObjectStore(t, srv, "shared")
	ctx := context.Background()
	b := clienttest.MustLTX(t, 512, 1, 1, 1, time.Now())

	for _, path := range []string{"a", "ab", "b/a"} {
		if _, err := NewTestClient(t, srv, "shared", path).WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.PutString(ctx, "unrelated.txt", "not litestream's"); err != nil {
		t.Fatal(err)
	}

	if err := NewTestClient(t, srv, "shared", "a").DeleteAll(ctx); err != nil {
		t.Fatalf("delete all: %v", err)
	}
	want := []string{
		"ab/ltx/0/0000000000000001-0000000000000001.ltx",
		"b/a/ltx/0/0000000000000001-0000000000000001.ltx",
		"unrelated.txt",
	}
	if got := MustNames(t, store); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after DeleteAll of path a:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A client at the bucket root deletes its own ltx/ tree, nothing else.
	root := NewTestClient(t, srv, "shared", "")
	if _, err := root.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if err := root.DeleteAll(ctx); err != nil {
		t.Fatalf("delete all of root: %v", err)
	}
	if got := MustNames(t, store); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after DeleteAll of the root:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReplicaClient_Init(t *testing.T) {
	t.Parallel()
	srv := testserver.StartNATS(t)
	MustObjectStore(t, srv, "exists")
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		c := NewTestClient(t, srv, "exists", "p")
		for i := 0; i < 2; i++ {
			if err := c.Init(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("ErrMissingBucket", func(t *testing.T) {
		err := NewTestClient(t, srv, "missing", "p").Init(ctx)
		if err == nil || !strings.Contains(err.Error(), `"missing"`) {
			t.Fatalf("init: err = %v, want an error naming the bucket", err)
		}
	})
	t.Run("ErrNoBucket", func(t *testing.T) {
		err := NewTestClient(t, srv, "", "p").Init(ctx)
		if err == nil || !strings.Contains(err.Error(), "bucket name required") {
			t.Fatalf("init: err = %v", err)
		}
	})
	t.Run("ErrHalfJWT", func(t *testing.T) {
		c := NewTestClient(t, srv, "exists", "p")
		c.JWT = "eyJ0"
		if err := c.Init(ctx); err == nil || !strings.Contains(err.Error(), "jwt and seed") {
			t.Fatalf("init: err = %v", err)
		}
	})
	t.Run("ErrNoServer", func(t *testing.T) {
		c := NewTestClient(t, srv, "exists", "p")
		c.URL = "nats://" + testserver.Addr(testserver.FreePort(t))
		c.Timeout = time.Second
		if err := c.Init(ctx); err == nil || !strings.Contains(err.Error(), "connect") {
			t.Fatalf("init: err = %v", err)
		}
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	for _, tt := range []struct {
		url                               string
		serverURL, bucket, user, password string
		wantErr                           string
	}{
		{url: "nats://localhost:4222/mybucket", serverURL: "nats://localhost:4222", bucket: "mybucket"},
		{url: "nats://nats.example.com/mybucket", serverURL: "nats://nats.example.com", bucket: "mybucket"},
		{url: "nats://alice:s3cret@localhost:4222/mybucket/", serverURL: "nats://localhost:4222", bucket: "mybucket", user: "alice", password: "s3cret"},
		{url: "nats://alice@localhost/b", serverURL: "nats://localhost", bucket: "b", user: "alice"},
		{url: "nats://localhost:4222", wantErr: "bucket required"},
		{url: "nats://localhost:4222/", wantErr: "bucket required"},
		{url: "nats://localhost/a/b", wantErr: "must not contain '/'"},
		{url: "nats:///bucket", wantErr: "host required"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			rc := clienttest.MustClientFromURL(t, tt.url, tt.wantErr)
			if rc == nil {
				return
			}
			c := rc.(*lnats.ReplicaClient)
			if c.URL != tt.serverURL || c.BucketName != tt.bucket || c.Username != tt.user || c.Password != tt.password || c.Path != "" {
				t.Fatalf("got url=%q bucket=%q user=%q password=%q path=%q", c.URL, c.BucketName, c.Username, c.Password, c.Path)
			}
			if c.Type() != "nats" || c.MaxReconnects != -1 || c.ReconnectWait != 2*time.Second || c.Timeout != 10*time.Second {
				t.Fatalf("defaults: %+v", c)
			}
		})
	}
}
