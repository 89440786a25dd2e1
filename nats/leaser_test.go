// Tests of the nats leaser and create-only writes against nats-server.
package nats_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
)

func TestLeaser_Conformance(t *testing.T) {
	srv := testserver.StartNATS(t)
	MustObjectStore(t, srv, "lease")
	clienttest.RunLeaser(t, func(t testing.TB, path, owner string, ttl time.Duration) (litestream.ReplicaClient, litestream.Leaser) {
		c := NewTestClient(t, srv, "lease", path)
		l := c.NewLeaser()
		l.Owner, l.TTL = owner, ttl
		return c, l
	})
}
