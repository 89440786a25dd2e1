// The oss backend refuses leases with a clear error.
package oss_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/oss"
)

func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
	client := oss.NewReplicaClient()
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.Leaser = client.NewLeaser()
	err := db.Open()
	if !errors.Is(err, litestream.ErrLeaseUnsupported) || !strings.Contains(err.Error(), "oss") {
		t.Fatalf("open with a oss lease: err = %v, want ErrLeaseUnsupported naming oss", err)
	}
}
