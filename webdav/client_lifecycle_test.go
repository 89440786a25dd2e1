// client_lifecycle_test.go: Init while the server is down, and transfers
// that take longer than Timeout.
package webdav_test

import (
	"bytes"
	"io"
	"runtime"
	"sync/atomic"

	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/internal/clienttest"

	lwebdav "github.com/benbjohnson/litestream/webdav"
)

// A call made while another's Init is still trying to connect to a server
// that is down (503) fails with an error; it must not go on with a client
// that is not set up, which panicked in gowebdav on a nil Authorizer, in a
// background goroutine, taking the whole program down.
func TestReplicaClient_CallDuringFailingInit(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	c := lwebdav.NewReplicaClient()
	c.URL = srv.URL
	c.Path = "db"
	ctx := context.Background()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // e.g. the replica's sync monitor
		defer wg.Done()
		_ = c.Init(ctx)
	}()
	var panicked any
	var listErr error
	go func() { // e.g. the compaction monitor, while Init retries
		defer wg.Done()
		defer func() { panicked = recover() }()
		for requests.Load() < 3 { // Init is retrying
			runtime.Gosched()
		}
		_, listErr = c.LTXFiles(ctx, 0, 0, false)
	}()
	wg.Wait()
	if panicked != nil {
		t.Fatalf("LTXFiles concurrent with a failing Init panicked: %v", fmt.Sprint(panicked))
	} else if listErr == nil {
		t.Fatal("LTXFiles succeeded against a server that answers 503")
	}
}

// Timeout bounds connecting and waiting for a response, not a transfer: a
// stream read more slowly than Timeout (a restore of a large snapshot) must
// still read to its end. The test uses a 2 s Timeout.
func TestReplicaClient_TimeoutDoesNotCutLongStreams(t *testing.T) {
	srv := MustStartXNet(t, nil)
	c := lwebdav.NewReplicaClient()
	c.URL, c.Username, c.Password, c.Path = srv.URL, srv.Username, srv.Password, "db"
	c.Timeout = 2 * time.Second
	clienttest.MustReadSlowly(t, c, 2048, 3*time.Second) // ~8 MB
}

// Nor an upload that takes longer than Timeout (a large snapshot over a
// modest link): here ~256 KB/s, about 1 MB, a 2 s Timeout.
func TestReplicaClient_TimeoutDoesNotFailLongUploads(t *testing.T) {
	srv := MustStartXNet(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				r.Body = slowBody{r.Body} // a slow link: ~256 KB/s
			}
			h.ServeHTTP(w, r)
		})
	})
	c := lwebdav.NewReplicaClient()
	c.URL, c.Username, c.Password, c.Path = srv.URL, srv.Username, srv.Password, "db"
	c.Timeout = 2 * time.Second

	b := clienttest.MustLTX(t, 4096, 1, 1, 256, time.Now())
	if _, err := c.WriteLTXFile(context.Background(), 9, 1, 1, bytes.NewReader(b)); err != nil {
		t.Fatalf("upload slower than Timeout: %v", err)
	}
}

type slowBody struct{ io.ReadCloser }

func (b slowBody) Read(p []byte) (int, error) {
	time.Sleep(125 * time.Millisecond)
	return b.ReadCloser.Read(p[:min(len(p), 32<<10)])
}
