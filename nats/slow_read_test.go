// slow_read_test.go: reading an object more slowly than the SDK's default
// request timeout.
package nats_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/litestream/internal/clienttest"
)

// A stream opened with a context without deadline (restore and follow pass
// one) must read to its end however slowly it is consumed: nats.go bounds
// such a read by its 5 s default, which failed a restore of any snapshot
// that took longer to stream.
func TestReplicaClient_SlowReadOutlastsDefaultTimeout(t *testing.T) {
	fx := mustNATS(t)
	c := fx.NewClient(t, "db")
	clienttest.MustReadSlowly(t, c, 64, 6*time.Second) // ~256 KB in two chunks; past nats.go's 5 s default
}
