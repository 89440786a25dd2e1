// The webdav backend refuses leases with a clear error.
package webdav_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/webdav"
)

func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
	client := webdav.NewReplicaClient()
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.Leaser = client.NewLeaser()
	err := db.Open()
	if !errors.Is(err, litestream.ErrLeaseUnsupported) || !strings.Contains(err.Error(), "webdav") {
		t.Fatalf("open with a webdav lease: err = %v, want ErrLeaseUnsupported naming webdav", err)
	}
}
