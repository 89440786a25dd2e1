package sftp_test

import (
	"path"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
)

// TestReplicaClient_V3 runs the v0.3.x suite on OpenSSH, with files written
// through a plain pkg/sftp client at v0.3.x's paths.
func TestReplicaClient_V3(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	raw := MustRawClient(t, srv)
	clienttest.RunV3(t, func(t testing.TB, p string) litestream.ReplicaClient {
		return NewTestClient(t, srv, path.Join(srv.Dir, p))
	}, func(t testing.TB, name string, data []byte) {
		t.Helper()
		if err := raw.MkdirAll(path.Dir(name)); err != nil {
			t.Fatalf("mkdir %s: %v", path.Dir(name), err)
		}
		f, err := raw.Create(name)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		} else if _, err := f.Write(data); err != nil {
			t.Fatalf("write %s: %v", name, err)
		} else if err := f.Close(); err != nil {
			t.Fatalf("close %s: %v", name, err)
		}
	})
}
