package file_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

// TestReplicaClient_V3 runs the v0.3.x suite on a directory, with files
// written as v0.3.x's file replica laid them out.
func TestReplicaClient_V3(t *testing.T) {
	root := t.TempDir()
	clienttest.RunV3(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return file.NewReplicaClient(filepath.Join(root, path))
	}, func(t testing.TB, key string, data []byte) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		} else if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}
