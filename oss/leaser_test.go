// The oss backend refuses leases with a clear error.
package oss_test

import (
	"testing"

	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/oss"
)

func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	client := oss.NewReplicaClient()
	clienttest.RunLeaserUnsupported(t, "oss", client, client.NewLeaser())
}
