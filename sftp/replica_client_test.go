// Tests of the SFTP client against sshd.
package sftp_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	lsftp "github.com/benbjohnson/litestream/sftp"
	"github.com/pkg/sftp"
	"github.com/superfly/ltx"
	"golang.org/x/crypto/ssh"
)

// MustRawClient returns a plain pkg/sftp client to inspect the server.
func MustRawClient(t testing.TB, srv *testserver.SSHD) *sftp.Client {
	t.Helper()
	buf, err := os.ReadFile(srv.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(buf)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
		User: srv.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = conn.Close() })
	return client
}

// mustSSHD starts sshd; its login directory is the fixture's store.
func mustSSHD(t testing.TB) clienttest.Fixture {
	t.Helper()
	srv := testserver.StartSSHD(t)
	fx := clienttest.OnDisk(srv.Dir, func(t testing.TB, p string) litestream.ReplicaClient {
		if p == "" {
			return lsftp.NewTestClient(t, srv, "") // the login directory: srv.Dir
		}
		return lsftp.NewTestClient(t, srv, path.Join(srv.Dir, p))
	})
	fx.Layout = clienttest.LayoutLevelDir
	return fx
}

// TestReplicaClient_Suites runs the shared suites on OpenSSH, v0.3.x's
// backups written into the served directory. Mtimes hold the header
// timestamp in the whole seconds SFTPv3 keeps.
func TestReplicaClient_Suites(t *testing.T) {
	t.Parallel()
	clienttest.RunBackend(t, clienttest.Backend{
		Start:     mustSSHD,
		KeyLayout: clienttest.KeyLayoutOptions{WantStamp: "2022-03-04T05:06:07Z"},
		V3:        true,
	})
}

// TestReplicaClient_WriteLTXFile covers overwriting over OpenSSH, which
// rejects a plain SFTPv3 rename onto an existing file (upstream's bug).
func TestReplicaClient_WriteLTXFile(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	ctx := context.Background()

	t.Run("PlainRenameFailsOnOpenSSH", func(t *testing.T) {
		// The premise of the fix: without posix-rename this server refuses.
		raw := MustRawClient(t, srv)
		a, b := path.Join(srv.Dir, "a"), path.Join(srv.Dir, "b")
		for _, name := range []string{a, b} {
			f, err := raw.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
		}
		if err := raw.Rename(a, b); err == nil {
			t.Fatal("plain rename onto an existing file succeeded; the overwrite test proves nothing here")
		}
	})

	t.Run("OverwriteOpenSSH", func(t *testing.T) {
		c := lsftp.NewTestClient(t, srv, path.Join(srv.Dir, "overwrite"))
		b1 := clienttest.MustLTX(t, 512, 1, 9, 1, time.Now())
		b2 := clienttest.MustLTX(t, 512, 1, 9, 3, time.Now().Add(time.Hour))
		for _, b := range [][]byte{b1, b2, b2} {
			if _, err := c.WriteLTXFile(ctx, 9, 1, 9, bytes.NewReader(b)); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		if got := clienttest.MustRead(t, c, 9, 1, 9, 0, 0); !bytes.Equal(got, b2) {
			t.Fatalf("read %d bytes, want the second file's %d", len(got), len(b2))
		}
		entries, err := MustRawClient(t, srv).ReadDir(path.Join(srv.Dir, "overwrite/ltx/9"))
		if err != nil {
			t.Fatal(err)
		} else if len(entries) != 1 {
			t.Fatalf("level dir has %d entries, want 1 (temporary files left?)", len(entries))
		}
	})

	t.Run("ErrBadHeader", func(t *testing.T) {
		c := lsftp.NewTestClient(t, srv, path.Join(srv.Dir, "bad"))
		if _, err := c.WriteLTXFile(ctx, 0, 1, 1, strings.NewReader("not an ltx file")); err == nil {
			t.Fatal("write of a non-LTX stream succeeded")
		}
	})
}

// TestReplicaClient_LTXFiles checks both timestamp modes: SFTPv3 keeps whole
// seconds, so only useMetadata=true is exact.
func TestReplicaClient_LTXFiles(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	ctx := context.Background()
	c := lsftp.NewTestClient(t, srv, path.Join(srv.Dir, "ts"))
	ts := time.Date(2019, 12, 31, 23, 59, 58, 999e6, time.UTC)
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(clienttest.MustLTX(t, 512, 1, 1, 1, ts))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		useMetadata bool
		want        time.Time
	}{{false, ts.Truncate(time.Second)}, {true, ts}} {
		if a := clienttest.MustList(t, c, 0, 0, tt.useMetadata); len(a) != 1 || !a[0].CreatedAt.Equal(tt.want) {
			t.Fatalf("useMetadata=%v: got %v, want CreatedAt %v", tt.useMetadata, a, tt.want)
		}
	}
}

func TestReplicaClient_Init(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	client := func(set func(c *lsftp.ReplicaClient)) *lsftp.ReplicaClient {
		c := lsftp.NewTestClient(t, srv, srv.Dir)
		set(c)
		return c
	}
	clienttest.RunInitCases(t, []clienttest.InitCase{
		{Name: "ErrWrongHostKey", Client: client(func(c *lsftp.ReplicaClient) {
			c.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
		}), WantErr: "handshake"},
		{Name: "ErrNoAuth", Client: client(func(c *lsftp.ReplicaClient) { c.KeyPath = "" }), WantErr: "handshake"},
		{Name: "ErrMissingKeyFile", Client: client(func(c *lsftp.ReplicaClient) { c.KeyPath = path.Join(srv.Dir, "nokey") }), WantIs: os.ErrNotExist},
		{Name: "ErrNoHost", Client: &lsftp.ReplicaClient{User: "u"}, WantErr: "host required"},
		{Name: "OKUnpinnedHostKey", Client: client(func(c *lsftp.ReplicaClient) { c.HostKey = "" })},
	})
	t.Run("ErrCanceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := lsftp.NewTestClient(t, srv, srv.Dir).Init(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("init: err = %v, want context.Canceled", err)
		}
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	// A URL's client has these settings and the defaults.
	withDefaults := func(c *lsftp.ReplicaClient) *lsftp.ReplicaClient {
		c.ConcurrentWrites, c.DialTimeout = true, lsftp.DefaultDialTimeout
		return c
	}
	clienttest.RunURLCases(t, "sftp", []string{"Host", "User", "Password", "Path", "ConcurrentWrites", "DialTimeout"}, []clienttest.URLCase[*lsftp.ReplicaClient]{
		{URL: "sftp://alice@example.com/backups/db", Want: withDefaults(&lsftp.ReplicaClient{Host: "example.com", User: "alice", Path: "backups/db"})},
		{URL: "sftp://alice:s3cret@example.com:2222/db", Want: withDefaults(&lsftp.ReplicaClient{Host: "example.com:2222", User: "alice", Password: "s3cret", Path: "db"})},
		{URL: "sftp://alice@example.com", Want: withDefaults(&lsftp.ReplicaClient{Host: "example.com", User: "alice"})},
		{URL: "sftp://alice@example.com/", Want: withDefaults(&lsftp.ReplicaClient{Host: "example.com", User: "alice"})},
		{URL: "sftp://alice@[::1]:22/a/./b/../c", Want: withDefaults(&lsftp.ReplicaClient{Host: "[::1]:22", User: "alice", Path: "a/c"})},

		{URL: "sftp://example.com/db", WantErr: "user required"},
		{URL: "sftp://:pw@example.com/db", WantErr: "user required"},
		{URL: "sftp:///db", WantErr: "host required"},
		{URL: "sftp://alice@exa mple.com/db", WantErr: "invalid character"},
	})
}

// TestReplicaClient_NewLeaser_Unsupported: the sftp backend refuses leases
// with a clear error.
func TestReplicaClient_NewLeaser_Unsupported(t *testing.T) {
	client := lsftp.NewReplicaClient()
	clienttest.RunLeaserUnsupported(t, "sftp", client, client.NewLeaser())
}

// A write removes the temporary files that killed writers left in its level
// directory once they are an hour old, and keeps recent ones.
func TestReplicaClient_WriteLTXFile_RemovesStaleTemps(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	clienttest.RunStaleTemps(t, lsftp.NewTestClient(t, srv, path.Join(srv.Dir, "sweep")), 0, path.Join(srv.Dir, "sweep", "ltx", "0"),
		[]string{ltx.FormatFilename(1, 1) + ".4242.1700000000000000000.1.tmp"}, nil, []string{ltx.FormatFilename(2, 2) + ".4242.1700000000000000001.2.tmp"})
}
