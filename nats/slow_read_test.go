// slow_read_test.go: reading an object more slowly than the SDK's default
// request timeout.
package nats_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/internal/clienttest"
)

// A stream opened with a context without deadline (restore and follow pass
// one) must read to its end however slowly it is consumed: nats.go bounds
// such a read by its 5 s default, which failed a restore of any snapshot
// that took longer to stream.
func TestReplicaClient_SlowReadOutlastsDefaultTimeout(t *testing.T) {
	fx := mustNATS(t)
	c := fx.NewClient(t, "db")
	ctx := context.Background()

	b := clienttest.MustLTX(t, 4096, 1, 1, 64, time.Now()) // ~256 KB, two 128 KB chunks
	clienttest.MustWrite(t, c, 9, 1, 1, b)

	rc, err := c.OpenLTXFile(ctx, 9, 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatalf("first read: %v", err)
	}
	// A consumer slower than the SDK's default API timeout.
	time.Sleep(6 * time.Second) // longer than nats.go's 5 s default is the point
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading the rest of a stored file 6s after opening it: %v (read %d of %d bytes)", err, len(buf)+len(rest), len(b))
	}
	if len(buf)+len(rest) != len(b) {
		t.Fatalf("read %d bytes, want %d", len(buf)+len(rest), len(b))
	}
}
