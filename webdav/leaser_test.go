// The webdav backend refuses leases with a clear error.
package webdav_test

import (
	"testing"

	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/webdav"
)

func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	client := webdav.NewReplicaClient()
	clienttest.RunLeaserUnsupported(t, "webdav", client, client.NewLeaser())
}
