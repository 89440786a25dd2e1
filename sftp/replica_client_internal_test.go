// Tests of the SFTP client's reconnection, and the test client the
// package's external tests share.
package sftp

import (
	"bytes"
	"context"
	"os"
	"path"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	"github.com/superfly/ltx"
)

// NewTestClient returns a client for the OpenSSH server rooted at dir,
// closed when the test ends; "" is the login directory, srv.Dir.
func NewTestClient(t testing.TB, srv *testserver.SSHD, dir string) *ReplicaClient {
	c := NewReplicaClient()
	t.Cleanup(func() { _ = c.Close() })
	c.Host, c.User, c.KeyPath, c.HostKey = srv.Addr, srv.User, srv.KeyPath, srv.HostKey
	c.Path = dir
	return c
}

// TestReplicaClient_Reconnect drops the SSH connection under the client and
// checks that the next operations redial.
func TestReplicaClient_Reconnect(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	ctx := context.Background()
	c := NewTestClient(t, srv, path.Join(srv.Dir, "reconnect"))

	b := clienttest.MustLTX(t, 512, 1, 1, 1, time.Now())
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"list", "open", "delete"} {
		c.mu.Lock()
		_ = c.sshClient.Close() // as if the network dropped
		c.mu.Unlock()

		var err error
		switch op {
		case "list":
			if a := clienttest.MustList(t, c, 0, 0, true); len(a) != 1 {
				t.Fatalf("listed %d files, want 1", len(a))
			}
		case "open":
			rc, openErr := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
			if err = openErr; err == nil {
				_ = rc.Close()
			}
		case "delete":
			err = c.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 0, MinTXID: 1, MaxTXID: 1}})
		}
		if err != nil {
			t.Fatalf("%s after connection loss: %v", op, err)
		}
	}
}

// When both renames fail because the temporary file is gone (swept by
// another writer, as removeStaleTemps documents), the last resort must not
// delete the file already stored under the final name: the upload fails,
// and the earlier copy stays.
func TestRename_VanishedTempKeepsStoredFile(t *testing.T) {
	srv := testserver.StartSSHD(t)
	ctx := context.Background()
	c := NewTestClient(t, srv, path.Join(srv.Dir, "rename"))

	b := clienttest.MustLTX(t, 512, 1, 1, 1, time.Now())
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	client, err := c.init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	final := c.filename(0, 1, 1)
	tmp := internal.LTXTempName(final) // removed before its rename
	if err := rename(client, tmp, final); err == nil {
		t.Fatal("rename of a vanished temporary file succeeded")
	}
	if _, statErr := client.Stat(final); os.IsNotExist(statErr) {
		t.Fatalf("a failed rename deleted the file already stored under %s", final)
	}
}
