package file_test

import (
	"path/filepath"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

func TestReplicaClient_Conformance(t *testing.T) {
	root := t.TempDir()
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return file.NewReplicaClient(filepath.Join(root, path))
	}, clienttest.Options{ListRaw: func(t testing.TB, path string) []clienttest.RawObject {
		return clienttest.MustListDir(t, filepath.Join(root, path))
	}})
}
