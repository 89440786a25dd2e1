// Tests of the SFTP client against sshd.
package sftp_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	lsftp "github.com/benbjohnson/litestream/sftp"
	"github.com/pkg/sftp"
	"github.com/superfly/ltx"
	"golang.org/x/crypto/ssh"
)

// NewTestClient returns a client for the OpenSSH server rooted at dir,
// closed when the test ends.
func NewTestClient(t testing.TB, srv *testserver.SSHD, dir string) *lsftp.ReplicaClient {
	c := lsftp.NewReplicaClient()
	t.Cleanup(func() { _ = c.Close() })
	c.Host = srv.Addr
	c.User = srv.User
	c.KeyPath = srv.KeyPath
	c.HostKey = srv.HostKey
	c.Path = dir
	return c
}

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

func TestReplicaClient_Conformance(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	clienttest.Run(t, func(t testing.TB, p string) litestream.ReplicaClient {
		if p == "" {
			return NewTestClient(t, srv, "") // the login directory: srv.Dir
		}
		return NewTestClient(t, srv, path.Join(srv.Dir, p))
	}, clienttest.Options{ListRaw: func(t testing.TB, p string) []clienttest.RawObject {
		return clienttest.MustListDir(t, path.Join(srv.Dir, p)) // the files sshd wrote
	}, RootPath: true})
}

// TestReplicaClient_KeyLayout checks the raw file names, that no temporary
// files are left behind and that mtimes hold the header timestamp.
func TestReplicaClient_KeyLayout(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	ts := time.Date(2022, 3, 4, 5, 6, 7, 890e6, time.UTC)
	root := path.Join(srv.Dir, "db")
	c := NewTestClient(t, srv, root)
	clienttest.MustWriteLayout(t, c, ts, []clienttest.LayoutFile{
		{Level: 0, Min: 1, Max: 1}, {Level: 1, Min: 1, Max: 0x2f}, {Level: 9, Min: 1, Max: 0x100},
	})

	raw := MustRawClient(t, srv)
	var got []string
	walker := raw.Walk(root)
	for walker.Step() {
		if err := walker.Err(); err != nil {
			t.Fatal(err)
		}
		if walker.Stat().IsDir() {
			continue
		}
		got = append(got, strings.TrimPrefix(walker.Path(), root+"/"))
		if mt := walker.Stat().ModTime(); !mt.Equal(ts.Truncate(time.Second)) {
			t.Errorf("%s: mtime %v, want %v", walker.Path(), mt.UTC(), ts.Truncate(time.Second))
		}
	}
	sort.Strings(got)
	want := []string{
		"ltx/0/0000000000000001-0000000000000001.ltx",
		"ltx/1/0000000000000001-000000000000002f.ltx",
		"ltx/9/0000000000000001-0000000000000100.ltx",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
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
		c := NewTestClient(t, srv, path.Join(srv.Dir, "overwrite"))
		b1 := clienttest.MustLTX(t, 512, 1, 9, 1, time.Now())
		b2 := clienttest.MustLTX(t, 512, 1, 9, 3, time.Now().Add(time.Hour))
		for _, b := range [][]byte{b1, b2, b2} {
			if _, err := c.WriteLTXFile(ctx, 9, 1, 9, bytes.NewReader(b)); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		rc, err := c.OpenLTXFile(ctx, 9, 1, 9, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rc.Close() }()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatal(err)
		} else if !bytes.Equal(buf.Bytes(), b2) {
			t.Fatalf("read %d bytes, want the second file's %d", buf.Len(), len(b2))
		}
		entries, err := MustRawClient(t, srv).ReadDir(path.Join(srv.Dir, "overwrite/ltx/9"))
		if err != nil {
			t.Fatal(err)
		} else if len(entries) != 1 {
			t.Fatalf("level dir has %d entries, want 1 (temporary files left?)", len(entries))
		}
	})

	t.Run("ErrBadHeader", func(t *testing.T) {
		c := NewTestClient(t, srv, path.Join(srv.Dir, "bad"))
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
	c := NewTestClient(t, srv, path.Join(srv.Dir, "ts"))
	ts := time.Date(2019, 12, 31, 23, 59, 58, 999e6, time.UTC)
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(clienttest.MustLTX(t, 512, 1, 1, 1, ts))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		useMetadata bool
		want        time.Time
	}{{false, ts.Truncate(time.Second)}, {true, ts}} {
		itr, err := c.LTXFiles(ctx, 0, 0, tt.useMetadata)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ltx.SliceFileIterator(itr)
		if err != nil {
			t.Fatal(err)
		} else if len(a) != 1 || !a[0].CreatedAt.Equal(tt.want) {
			t.Fatalf("useMetadata=%v: got %v, want CreatedAt %v", tt.useMetadata, a, tt.want)
		}
	}
}

func TestReplicaClient_Init(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	ctx := context.Background()

	t.Run("ErrWrongHostKey", func(t *testing.T) {
		c := NewTestClient(t, srv, srv.Dir)
		c.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
		if err := c.Init(ctx); err == nil || !strings.Contains(err.Error(), "handshake") {
			t.Fatalf("init: err = %v, want a handshake error", err)
		}
	})
	t.Run("ErrNoAuth", func(t *testing.T) {
		c := NewTestClient(t, srv, srv.Dir)
		c.KeyPath = ""
		if err := c.Init(ctx); err == nil {
			t.Fatal("init without credentials succeeded")
		}
	})
	t.Run("ErrMissingKeyFile", func(t *testing.T) {
		c := NewTestClient(t, srv, srv.Dir)
		c.KeyPath = path.Join(srv.Dir, "nokey")
		if err := c.Init(ctx); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("init: err = %v, want os.ErrNotExist", err)
		}
	})
	t.Run("ErrNoHost", func(t *testing.T) {
		if err := (&lsftp.ReplicaClient{User: "u"}).Init(ctx); err == nil || !strings.Contains(err.Error(), "host required") {
			t.Fatalf("init: err = %v", err)
		}
	})
	t.Run("ErrCanceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := NewTestClient(t, srv, srv.Dir).Init(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("init: err = %v, want context.Canceled", err)
		}
	})
	t.Run("OKUnpinnedHostKey", func(t *testing.T) {
		c := NewTestClient(t, srv, srv.Dir)
		c.HostKey = ""
		if err := c.Init(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	for _, tt := range []struct {
		url                        string
		host, user, password, path string
		wantErr                    string
	}{
		{url: "sftp://alice@example.com/backups/db", host: "example.com", user: "alice", path: "backups/db"},
		{url: "sftp://alice:s3cret@example.com:2222/db", host: "example.com:2222", user: "alice", password: "s3cret", path: "db"},
		{url: "sftp://alice@example.com", host: "example.com", user: "alice", path: ""},
		{url: "sftp://alice@example.com/", host: "example.com", user: "alice", path: ""},
		{url: "sftp://alice@[::1]:22/a/./b/../c", host: "[::1]:22", user: "alice", path: "a/c"},
		{url: "sftp://example.com/db", wantErr: "user required"},
		{url: "sftp://:pw@example.com/db", wantErr: "user required"},
		{url: "sftp:///db", wantErr: "host required"},
		{url: "sftp://alice@exa mple.com/db", wantErr: "invalid character"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			rc := clienttest.MustClientFromURL(t, tt.url, tt.wantErr)
			if rc == nil {
				return
			}
			c := rc.(*lsftp.ReplicaClient)
			if c.Host != tt.host || c.User != tt.user || c.Password != tt.password || c.Path != tt.path {
				t.Fatalf("got host=%q user=%q password=%q path=%q, want %q %q %q %q",
					c.Host, c.User, c.Password, c.Path, tt.host, tt.user, tt.password, tt.path)
			}
			if c.Type() != "sftp" || !c.ConcurrentWrites || c.DialTimeout != lsftp.DefaultDialTimeout {
				t.Fatalf("defaults: type=%q concurrent=%v timeout=%v", c.Type(), c.ConcurrentWrites, c.DialTimeout)
			}
		})
	}
}

// A write removes the temporary files that killed writers left in its level
// directory once they are an hour old, and keeps recent ones.
func TestReplicaClient_WriteLTXFile_RemovesStaleTemps(t *testing.T) {
	t.Parallel()
	srv := testserver.StartSSHD(t)
	ctx := context.Background()
	dir := path.Join(srv.Dir, "sweep", "ltx", "0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := path.Join(dir, ltx.FormatFilename(1, 1)+".4242.1700000000000000000.1.tmp")
	fresh := path.Join(dir, ltx.FormatFilename(2, 2)+".4242.1700000000000000001.2.tmp")
	for _, name := range []string{stale, fresh} {
		if err := os.WriteFile(name, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-internal.StaleTempAge - time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	c := NewTestClient(t, srv, path.Join(srv.Dir, "sweep"))
	if _, err := c.WriteLTXFile(ctx, 0, 3, 3, bytes.NewReader(clienttest.MustLTX(t, 512, 3, 3, 1, time.Now()))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temporary still there (stat: %v)", err)
	} else if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("recent temporary removed: %v", err)
	}
}
