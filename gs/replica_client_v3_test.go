package gs_test

import (
	"context"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

// TestReplicaClient_V3 runs the v0.3.x suite on fake-gcs-server, with
// objects written through the plain GCS SDK at v0.3.x's names.
func TestReplicaClient_V3(t *testing.T) {
	newClient, raw := MustFakeGCSBucket(t)
	clienttest.RunV3(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return newClient(path)
	}, func(t testing.TB, name string, data []byte) {
		t.Helper()
		w := raw.Object(name).NewWriter(context.Background())
		if _, err := w.Write(data); err != nil {
			t.Fatalf("write %s: %v", name, err)
		} else if err := w.Close(); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	})
}
