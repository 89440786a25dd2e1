// Tests of the WebDAV client against rclone and x/net/webdav.
package webdav_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	lwebdav "github.com/benbjohnson/litestream/webdav"
	"github.com/studio-b12/gowebdav"
	"github.com/superfly/ltx"
	"golang.org/x/net/webdav"
)

const testUser, testPass = "u", "p"

// server is a WebDAV endpoint a test runs against.
type server struct {
	URL, Username, Password string
}

// MustStartXNet serves webdav.Dir over a temporary directory on 127.0.0.1,
// requiring Basic auth. wrap, if set, wraps the handler.
func MustStartXNet(t testing.TB, wrap func(http.Handler) http.Handler) server {
	t.Helper()
	var h http.Handler = &webdav.Handler{FileSystem: webdav.Dir(t.TempDir()), LockSystem: webdav.NewMemLS()}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return server{URL: srv.URL, Username: testUser, Password: testPass}
}

// MustStartRclone runs `rclone serve webdav`.
func MustStartRclone(t testing.TB) server {
	t.Helper()
	r := testserver.StartRcloneWebDAV(t)
	return server{URL: r.URL, Username: r.Username, Password: r.Password}
}

// NewTestClient returns a client for the server rooted at path.
func NewTestClient(srv server, path string) *lwebdav.ReplicaClient {
	c := lwebdav.NewReplicaClient()
	c.URL, c.Username, c.Password, c.Path = srv.URL, srv.Username, srv.Password, path
	return c
}

// fixture is the server as the shared tests reach it, its files read
// through a plain gowebdav client.
func fixture(srv server) clienttest.Fixture {
	raw := gowebdav.NewClient(srv.URL, srv.Username, srv.Password)
	return clienttest.Fixture{
		NewClient: func(t testing.TB, path string) litestream.ReplicaClient { return NewTestClient(srv, path) },
		Layout:    clienttest.LayoutLevelDir,
		Names:     func(t testing.TB) []string { return mustWalk(t, raw, "") },
		Get:       func(name string) (io.ReadCloser, error) { return raw.ReadStream("/" + name) },
	}
}

// serverStarts start the two real servers every behaviour is checked
// against.
var serverStarts = map[string]func(t testing.TB) server{
	"Rclone": MustStartRclone,
	"XNet":   func(t testing.TB) server { return MustStartXNet(t, nil) },
}

// TestReplicaClient_Suites runs the shared suites on each server, and the
// conformance suite on one that ignores Range headers.
func TestReplicaClient_Suites(t *testing.T) {
	t.Parallel()
	for name, start := range serverStarts {
		t.Run(name, func(t *testing.T) {
			clienttest.RunBackend(t, clienttest.Backend{
				Start: func(t testing.TB) clienttest.Fixture { return fixture(start(t)) },
			})
		})
	}
	t.Run("RangeIgnored", func(t *testing.T) {
		// A server that ignores Range headers answers 200 with the whole file.
		srv := MustStartXNet(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Range")
				h.ServeHTTP(w, r)
			})
		})
		clienttest.Run(t, fixture(srv).NewClient, clienttest.Options{LargeFileSize: 1 << 20})
	})
}

// mustWalk lists the files under dir, relative to the server's root and
// sorted.
func mustWalk(t testing.TB, raw *gowebdav.Client, dir string) []string {
	t.Helper()
	fis, err := raw.ReadDir("/" + dir)
	if gowebdav.IsErrNotFound(err) {
		return nil // nothing was ever written under dir
	} else if err != nil {
		t.Fatalf("read dir /%s: %v", dir, err)
	}
	var names []string
	for _, fi := range fis {
		p := strings.TrimPrefix(dir+"/"+fi.Name(), "/")
		if fi.IsDir() {
			names = append(names, mustWalk(t, raw, p)...)
		} else {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	return names
}

// TestReplicaClient_LTXFiles checks the timestamp fix: servers keep the
// upload time, so useMetadata=true must read the LTX header's timestamp.
func TestReplicaClient_LTXFiles(t *testing.T) {
	t.Parallel()
	for name, start := range serverStarts {
		t.Run(name, func(t *testing.T) {
			c := NewTestClient(start(t), "ts")
			ts := time.Date(2019, 12, 31, 23, 59, 58, 999e6, time.UTC)
			before := time.Now().Add(-time.Minute)
			for txid := ltx.TXID(1); txid <= 20; txid++ {
				clienttest.MustWrite(t, c, 0, txid, txid, clienttest.MustLTX(t, 512, txid, txid, 1, ts.Add(time.Duration(txid)*time.Millisecond)))
			}
			for _, useMetadata := range []bool{false, true} {
				a := clienttest.MustList(t, c, 0, 0, useMetadata)
				if len(a) != 20 {
					t.Fatalf("listed %d files, want 20", len(a))
				}
				for _, info := range a {
					want := ts.Add(time.Duration(info.MinTXID) * time.Millisecond)
					if useMetadata && !info.CreatedAt.Equal(want) {
						t.Fatalf("useMetadata=true: %s CreatedAt = %v, want header time %v", info.MinTXID, info.CreatedAt, want)
					} else if !useMetadata && info.CreatedAt.Before(before) {
						t.Fatalf("useMetadata=false: %s CreatedAt = %v, want the upload time", info.MinTXID, info.CreatedAt)
					}
				}
			}
		})
	}
}

// TestReplicaClient_Retry checks that 503 answers are retried.
func TestReplicaClient_Retry(t *testing.T) {
	t.Parallel()
	var seen sync.Map
	var failed atomic.Int64
	srv := MustStartXNet(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The first try of every distinct request fails.
			if _, ok := seen.LoadOrStore(r.Method+" "+r.URL.Path, true); !ok {
				failed.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := context.Background()
	c := NewTestClient(srv, "retry")
	b := clienttest.MustLTX(t, 512, 1, 1, 3, time.Now())
	for txid := ltx.TXID(1); txid <= 5; txid++ {
		if _, err := c.WriteLTXFile(ctx, 0, txid, txid, bytes.NewReader(b)); err != nil {
			t.Fatalf("write %d: %v", txid, err)
		}
	}
	if a := clienttest.MustList(t, c, 0, 0, true); len(a) != 5 {
		t.Fatalf("listed %d files; want 5", len(a))
	}
	if err := c.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if failed.Load() < 10 {
		t.Fatalf("only %d requests failed; the test proves little", failed.Load())
	}
}

// TestReplicaClient_Context checks that a request in flight ends with its
// context.
func TestReplicaClient_Context(t *testing.T) {
	t.Parallel()
	var block atomic.Bool
	done := make(chan struct{})
	srv := MustStartXNet(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if block.Load() && r.Method == "PROPFIND" {
				// The server notices a closed connection only once the
				// body has been read.
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-done:
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	t.Cleanup(func() { close(done) }) // runs before the server closes
	c := NewTestClient(srv, "ctx")
	if err := c.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	block.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.LTXFiles(ctx, 0, 0, false)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("list: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("list returned after %v", d)
	}
}

func TestReplicaClient_Init(t *testing.T) {
	t.Parallel()
	srv := MustStartXNet(t, nil)
	ctx := context.Background()
	t.Run("ErrNoURL", func(t *testing.T) {
		if err := lwebdav.NewReplicaClient().Init(ctx); err == nil || err.Error() != "webdav url required" {
			t.Fatalf("init: err = %v, want webdav url required", err)
		}
	})
	t.Run("ErrBadPassword", func(t *testing.T) {
		c := NewTestClient(srv, "p")
		c.Password = "wrong"
		if err := c.Init(ctx); err == nil {
			t.Fatal("init with a wrong password succeeded")
		}
	})
	t.Run("ErrNotFoundIsNotExist", func(t *testing.T) {
		if _, err := NewTestClient(srv, "p").OpenLTXFile(ctx, 0, 1, 1, 0, 100); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open: err = %v", err)
		}
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	// A URL's client has these settings and the default timeout.
	withDefaults := func(c *lwebdav.ReplicaClient) *lwebdav.ReplicaClient {
		c.Timeout = lwebdav.DefaultTimeout
		return c
	}
	clienttest.RunURLCases(t, "webdav", []string{"URL", "Username", "Password", "Path", "Timeout"}, []clienttest.URLCase[*lwebdav.ReplicaClient]{
		{URL: "webdav://dav.example.com/backups/db", Want: withDefaults(&lwebdav.ReplicaClient{URL: "http://dav.example.com", Path: "backups/db"})},
		{URL: "webdavs://dav.example.com/backups/db", Want: withDefaults(&lwebdav.ReplicaClient{URL: "https://dav.example.com", Path: "backups/db"})},
		{URL: "webdav://alice:s3cret@dav.example.com:8080/db", Want: withDefaults(&lwebdav.ReplicaClient{URL: "http://dav.example.com:8080", Username: "alice", Password: "s3cret", Path: "db"})},
		{URL: "webdavs://alice@dav.example.com", Want: withDefaults(&lwebdav.ReplicaClient{URL: "https://dav.example.com", Username: "alice"})},
		{URL: "webdav://dav.example.com/", Want: withDefaults(&lwebdav.ReplicaClient{URL: "http://dav.example.com"})},
		{URL: "webdav://dav.example.com/a/../b/./c", Want: withDefaults(&lwebdav.ReplicaClient{URL: "http://dav.example.com", Path: "b/c"})},

		{URL: "webdav:///db", WantErr: "host required"},
		{URL: "webdavs:///db", WantErr: "host required"},
		{URL: "webdav://dav example.com/db", WantErr: "invalid character"},
	})
	t.Run("ErrScheme", func(t *testing.T) {
		if _, err := lwebdav.NewReplicaClientFromURL("http", "h", "p", nil, nil); err == nil || !strings.Contains(err.Error(), "unsupported scheme") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestReplicaClient_NewLeaser_Unsupported: the webdav backend refuses
// leases with a clear error.
func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	client := lwebdav.NewReplicaClient()
	clienttest.RunLeaserUnsupported(t, "webdav", client, client.NewLeaser())
}
