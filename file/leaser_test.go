// Tests of the file backend's leaser and create-only writes.
package file_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

func TestLeaser_Conformance(t *testing.T) {
	root := t.TempDir()
	clienttest.RunLeaser(t, func(t testing.TB, path, owner string, ttl time.Duration) (litestream.ReplicaClient, litestream.Leaser) {
		c := file.NewReplicaClient(filepath.Join(root, path))
		l := c.NewLeaser()
		l.Owner, l.TTL = owner, ttl
		return c, l
	})
}
