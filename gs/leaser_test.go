// Tests of the gs leaser and create-only writes against fake-gcs-server.
package gs_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

func TestLeaser_Conformance(t *testing.T) {
	newClient, _ := MustFakeGCSBucket(t)
	clienttest.RunLeaser(t, func(t testing.TB, path, owner string, ttl time.Duration) (litestream.ReplicaClient, litestream.Leaser) {
		c := newClient(path)
		l := c.NewLeaser()
		l.Owner, l.TTL = owner, ttl
		return c, l
	})
}
