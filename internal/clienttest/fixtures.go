// Fixtures the backends' own tests share: building a client from a replica
// URL with its expected error, and writing the small files a key-layout
// test then looks for in the service's own listing.

package clienttest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// MustClientFromURL builds a client from url through the registry. With
// wantErr set it fails the test unless the error contains wantErr, and
// returns nil; otherwise it fails on any error.
func MustClientFromURL(t testing.TB, url, wantErr string) litestream.ReplicaClient {
	t.Helper()
	rc, err := litestream.NewReplicaClientFromURL(url)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want %q", err, wantErr)
		}
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return rc
}

// LayoutFile names one file of a key-layout test.
type LayoutFile struct {
	Level    int
	Min, Max ltx.TXID
}

// MustWriteLayout writes each file, one 512-byte page stamped ts, through c.
func MustWriteLayout(t testing.TB, c litestream.ReplicaClient, ts time.Time, files []LayoutFile) {
	t.Helper()
	for _, f := range files {
		b := MustLTX(t, 512, f.Min, f.Max, 1, ts)
		if _, err := c.WriteLTXFile(context.Background(), f.Level, f.Min, f.Max, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
}
