// The sftp backend refuses leases with a clear error.
package sftp_test

import (
	"testing"

	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/sftp"
)

func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	client := sftp.NewReplicaClient()
	clienttest.RunLeaserUnsupported(t, "sftp", client, client.NewLeaser())
}
