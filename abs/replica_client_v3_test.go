package abs_test

import (
	"context"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

// TestReplicaClient_V3 runs the v0.3.x suite on Azurite, with blobs
// uploaded through the plain Azure SDK at v0.3.x's names.
func TestReplicaClient_V3(t *testing.T) {
	t.Parallel()
	srv := MustStartAzurite(t, "v3backups")
	cc := MustContainerClient(t, srv, "v3backups")
	clienttest.RunV3(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return NewTestClient(srv, "v3backups", path)
	}, func(t testing.TB, name string, data []byte) {
		t.Helper()
		if _, err := cc.NewBlockBlobClient(name).UploadBuffer(context.Background(), data, nil); err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
	})
}
