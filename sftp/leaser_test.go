// The sftp backend refuses leases with a clear error.
package sftp_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/sftp"
)

func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
	client := sftp.NewReplicaClient()
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.Leaser = client.NewLeaser()
	err := db.Open()
	if !errors.Is(err, litestream.ErrLeaseUnsupported) || !strings.Contains(err.Error(), "sftp") {
		t.Fatalf("open with a sftp lease: err = %v, want ErrLeaseUnsupported naming sftp", err)
	}
}
