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

// servers returns the two real servers every behaviour is checked against.
func servers(t *testing.T) map[string]server {
	return map[string]server{"Rclone": MustStartRclone(t), "XNet": MustStartXNet(t, nil)}
}

func TestReplicaClient_Conformance(t *testing.T) {
	t.Parallel()
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
				return NewTestClient(srv, path)
			}, clienttest.Options{ListRaw: rawLister(srv), RootPath: true})
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
		clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
			return NewTestClient(srv, path)
		}, clienttest.Options{LargeFileSize: 1 << 20})
	})
}

// TestReplicaClient_KeyLayout checks the raw resource names upstream
// Litestream reads and writes, and that no temporary files remain.
func TestReplicaClient_KeyLayout(t *testing.T) {
	t.Parallel()
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ts := time.Date(2022, 3, 4, 5, 6, 7, 890e6, time.UTC)
			c := NewTestClient(srv, "db/replica")
			for _, f := range []struct {
				level    int
				min, max ltx.TXID
			}{{0, 1, 1}, {1, 1, 0x2f}, {9, 1, 0x100}} {
				b := clienttest.MustLTX(t, 512, f.min, f.max, 1, ts)
				for i := 0; i < 2; i++ { // the overwrite must not leave a temp file
					if _, err := c.WriteLTXFile(ctx, f.level, f.min, f.max, bytes.NewReader(b)); err != nil {
						t.Fatal(err)
					}
				}
			}
			raw := gowebdav.NewClient(srv.URL, srv.Username, srv.Password)
			got := mustWalk(t, raw, "/")
			want := []string{
				"/db/replica/ltx/0/0000000000000001-0000000000000001.ltx",
				"/db/replica/ltx/1/0000000000000001-000000000000002f.ltx",
				"/db/replica/ltx/9/0000000000000001-0000000000000100.ltx",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// rawLister lists a client's files with a plain gowebdav client.
func rawLister(srv server) clienttest.ListRawFunc {
	return func(t testing.TB, path string) []clienttest.RawObject {
		t.Helper()
		raw := gowebdav.NewClient(srv.URL, srv.Username, srv.Password)
		var objects []clienttest.RawObject
		for _, name := range mustWalk(t, raw, "/"+path) {
			objects = append(objects, clienttest.RawObject{
				Key:  strings.TrimPrefix(name, "/"+path+"/"),
				Open: func() (io.ReadCloser, error) { return raw.ReadStream(name) },
			})
		}
		return objects
	}
}

func mustWalk(t testing.TB, raw *gowebdav.Client, dir string) []string {
	t.Helper()
	fis, err := raw.ReadDir(dir)
	if gowebdav.IsErrNotFound(err) {
		return nil // nothing was ever written under dir
	} else if err != nil {
		t.Fatalf("read dir %s: %v", dir, err)
	}
	var names []string
	for _, fi := range fis {
		p := strings.TrimSuffix(dir, "/") + "/" + fi.Name()
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
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := NewTestClient(srv, "ts")
			ts := time.Date(2019, 12, 31, 23, 59, 58, 999e6, time.UTC)
			before := time.Now().Add(-time.Minute)
			for txid := ltx.TXID(1); txid <= 20; txid++ {
				b := clienttest.MustLTX(t, 512, txid, txid, 1, ts.Add(time.Duration(txid)*time.Millisecond))
				if _, err := c.WriteLTXFile(ctx, 0, txid, txid, bytes.NewReader(b)); err != nil {
					t.Fatal(err)
				}
			}
			for _, useMetadata := range []bool{false, true} {
				itr, err := c.LTXFiles(ctx, 0, 0, useMetadata)
				if err != nil {
					t.Fatal(err)
				}
				a, err := ltx.SliceFileIterator(itr)
				if err != nil {
					t.Fatal(err)
				} else if len(a) != 20 {
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
	itr, err := c.LTXFiles(ctx, 0, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := ltx.SliceFileIterator(itr); err != nil || len(a) != 5 {
		t.Fatalf("listed %d files, err %v; want 5", len(a), err)
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
		c := NewTestClient(srv, "p")
		_, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 100)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open: err = %v", err)
		}
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	for _, tt := range []struct {
		url                           string
		baseURL, user, password, path string
		wantErr                       string
	}{
		{url: "webdav://dav.example.com/backups/db", baseURL: "http://dav.example.com", path: "backups/db"},
		{url: "webdavs://dav.example.com/backups/db", baseURL: "https://dav.example.com", path: "backups/db"},
		{url: "webdav://alice:s3cret@dav.example.com:8080/db", baseURL: "http://dav.example.com:8080", user: "alice", password: "s3cret", path: "db"},
		{url: "webdavs://alice@dav.example.com", baseURL: "https://dav.example.com", user: "alice", path: ""},
		{url: "webdav://dav.example.com/", baseURL: "http://dav.example.com", path: ""},
		{url: "webdav://dav.example.com/a/../b/./c", baseURL: "http://dav.example.com", path: "b/c"},
		{url: "webdav:///db", wantErr: "host required"},
		{url: "webdavs:///db", wantErr: "host required"},
		{url: "webdav://dav example.com/db", wantErr: "invalid character"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			rc := clienttest.MustClientFromURL(t, tt.url, tt.wantErr)
			if rc == nil {
				return
			}
			c := rc.(*lwebdav.ReplicaClient)
			if c.URL != tt.baseURL || c.Username != tt.user || c.Password != tt.password || c.Path != tt.path {
				t.Fatalf("got url=%q user=%q password=%q path=%q, want %q %q %q %q", c.URL, c.Username, c.Password, c.Path, tt.baseURL, tt.user, tt.password, tt.path)
			}
			if c.Type() != "webdav" || litestream.ReplicaTypeFromURL(tt.url) != "webdav" || c.Timeout != lwebdav.DefaultTimeout {
				t.Fatalf("type=%q timeout=%v", c.Type(), c.Timeout)
			}
		})
	}
	t.Run("ErrScheme", func(t *testing.T) {
		if _, err := lwebdav.NewReplicaClientFromURL("http", "h", "p", nil, nil); err == nil || !strings.Contains(err.Error(), "unsupported scheme") {
			t.Fatalf("err = %v", err)
		}
	})
}
