// Tests of the abs leaser and create-only writes against Azurite.
package abs_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

func TestLeaser_Conformance(t *testing.T) {
	srv := MustStartAzurite(t, "lease")
	clienttest.RunLeaser(t, func(t testing.TB, path, owner string, ttl time.Duration) (litestream.ReplicaClient, litestream.Leaser) {
		c := NewTestClient(srv, "lease", path)
		l := c.NewLeaser()
		l.Owner, l.TTL = owner, ttl
		return c, l
	})
}
