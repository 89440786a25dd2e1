// Package sftp implements a ReplicaClient that stores LTX files on an SFTP
// server, laid out as <path>/ltx/<level>/<min>-<max>.ltx.
//
// URL form: sftp://user[:password]@host[:port]/path. User and host are
// required; the port defaults to 22. There are no query parameters. The URL
// path loses its leading "/", so it is relative to the login directory; set
// Path in code for an absolute directory. A private key (KeyPath) and a
// pinned host key (HostKey) can only be set in code or configuration.
//
// Atomicity: a file is written under a unique temporary name beside its
// final name ("<min>-<max>.ltx.<pid>.<nanos>.<seq>.tmp", which listings
// skip), its times set to the LTX header timestamp, then renamed into
// place with the posix-rename@openssh.com extension, which replaces an
// existing file atomically. Servers without it get a plain rename, after
// removing an existing target if the server refuses to overwrite. The
// temporary files of writers killed before their rename are removed by the
// next write to the same directory once untouched for an hour
// (internal.StaleTempAge).
//
// Timestamps: SFTP version 3 carries whole seconds only, so the file's mtime
// is the header timestamp truncated to the second. Listing with
// useMetadata=false reports that mtime; with useMetadata=true the client
// reads each file's LTX header to report the exact millisecond.
//
// A lost connection is dropped and redialed by the next operation; listings,
// opens and deletes are retried once on a fresh connection.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/superfly/ltx"
	"golang.org/x/crypto/ssh"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "sftp"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// DefaultDialTimeout is the dial timeout used when DialTimeout is zero.
const DefaultDialTimeout = 30 * time.Second

// ReplicaClient stores LTX files on an SFTP server.
type ReplicaClient struct {
	// Host is host[:port]; the port defaults to 22. Required.
	Host string
	// User is the login name. Required.
	User string
	// Password enables password authentication when set.
	Password string
	// Path is the remote root directory, relative to the login directory
	// unless it starts with "/".
	Path string
	// KeyPath is a private key file enabling public-key authentication.
	KeyPath string
	// HostKey pins the server's host key (authorized_keys format). When
	// empty the host key is not checked and a warning is logged.
	HostKey string
	// DialTimeout bounds connecting and the SSH handshake; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// ConcurrentWrites lets one file's writes be pipelined. Default true.
	ConcurrentWrites bool

	mu         sync.Mutex // guards sshClient and sftpClient
	sshClient  *ssh.Client
	sftpClient *sftp.Client

	logger  backend.Logger
	sweeper internal.TempSweeper // when each level directory was last swept
}

// NewReplicaClient returns a client with default settings.
func NewReplicaClient() *ReplicaClient {
	c := &ReplicaClient{
		DialTimeout:      DefaultDialTimeout,
		ConcurrentWrites: true,
	}
	return c
}

// NewReplicaClientFromURL builds a client from a parsed sftp:// URL.
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	if host == "" {
		return nil, fmt.Errorf("sftp replica url: host required (sftp://user@host[:port]/path)")
	}
	if userinfo == nil || userinfo.Username() == "" {
		return nil, fmt.Errorf("sftp replica url: user required (sftp://user@host[:port]/path)")
	}
	c := NewReplicaClient()
	c.Host = host
	c.User = userinfo.Username()
	c.Password, _ = userinfo.Password()
	c.Path = litestream.CleanReplicaURLPath(urlPath)
	return c, nil
}

func init() {
	litestream.RegisterReplicaClientFactory("sftp", NewReplicaClientFromURL)
}

// Type returns "sftp".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// String returns the replica's location for messages, without passwords.
func (c *ReplicaClient) String() string {
	return internal.ReplicaLocation("sftp://"+internal.UserAt(c.User)+c.Host, c.Path)
}

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Init connects to the server unless already connected.
func (c *ReplicaClient) Init(ctx context.Context) error {
	_, err := c.init(ctx)
	return err
}

func (c *ReplicaClient) init(ctx context.Context) (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftpClient != nil {
		return c.sftpClient, nil
	}

	config, err := c.sshConfig()
	if err != nil {
		return nil, err
	}
	addr := c.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}

	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	dialCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dialCtx, "tcp", addr)
	if err != nil {
		return nil, be.Errorf("dial %s: %w", addr, err)
	}
	// Bound the handshake by the same deadline.
	if deadline, ok := dialCtx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	sshConn, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	if err != nil {
		_ = conn.Close()
		return nil, be.Errorf("ssh handshake with %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	sshClient := ssh.NewClient(sshConn, chans, reqs)

	var opts []sftp.ClientOption
	if c.ConcurrentWrites {
		opts = append(opts, sftp.UseConcurrentWrites(true))
	}
	sftpClient, err := sftp.NewClient(sshClient, opts...)
	if err != nil {
		_ = sshClient.Close()
		return nil, be.Errorf("start sftp subsystem on %s: %w", addr, err)
	}
	c.sshClient, c.sftpClient = sshClient, sftpClient
	return sftpClient, nil
}

func (c *ReplicaClient) sshConfig() (*ssh.ClientConfig, error) {
	if c.Host == "" {
		return nil, be.Errorf("host required")
	}
	if c.User == "" {
		return nil, be.Errorf("user required")
	}
	config := &ssh.ClientConfig{
		User:           c.User,
		BannerCallback: ssh.BannerDisplayStderr(),
	}
	if c.HostKey != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
		if err != nil {
			return nil, be.Errorf("parse host key: %w", err)
		}
		config.HostKeyCallback = ssh.FixedHostKey(key)
	} else {
		c.logger.Get(be).Warn("sftp host key not verified", "host", c.Host)
		config.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	}
	if c.Password != "" {
		config.Auth = append(config.Auth, ssh.Password(c.Password))
	}
	if c.KeyPath != "" {
		buf, err := os.ReadFile(c.KeyPath)
		if err != nil {
			return nil, be.Errorf("read private key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(buf)
		if err != nil {
			return nil, be.Errorf("parse private key %s: %w", c.KeyPath, err)
		}
		config.Auth = append(config.Auth, ssh.PublicKeys(signer))
	}
	return config, nil
}

// resetOnLost drops the connection after err reports it lost, so that the
// next call redials. It reports whether it did.
func (c *ReplicaClient) resetOnLost(client *sftp.Client, err error) bool {
	if !isConnLost(err) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftpClient == client { // not already replaced by another caller
		_ = c.sftpClient.Close()
		_ = c.sshClient.Close()
		c.sftpClient, c.sshClient = nil, nil
	}
	return true
}

func isConnLost(err error) bool {
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// retry runs fn, and once more on a new connection if the first lost it.
func (c *ReplicaClient) retry(ctx context.Context, fn func(*sftp.Client) error) error {
	for attempt := 0; ; attempt++ {
		client, err := c.init(ctx)
		if err != nil {
			return err
		}
		err = fn(client)
		if err == nil || !c.resetOnLost(client, err) || attempt > 0 || ctx.Err() != nil {
			return err
		}
		c.logger.Get(be).Warn("sftp connection lost, reconnecting", "error", err)
	}
}

// LTXFiles lists a level's files with MinTXID >= seek in TXID order.
// CreatedAt is the mtime, whole seconds; with useMetadata it is read from
// each file's LTX header.
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	dir := litestream.LTXLevelDir(c.Path, level)
	fis, err := c.readDir(ctx, dir)
	if err != nil {
		return nil, be.Errorf("list %s: %w", dir, err)
	}
	var infos []*ltx.FileInfo
	for _, fi := range fis {
		if info := backend.FileInfo(fi.Name(), level, seek, fi.Size(), fi.ModTime()); info != nil && !fi.IsDir() {
			infos = append(infos, info)
		}
	}
	if useMetadata {
		if err := litestream.FetchLTXHeaderTimestamps(ctx, c, infos); err != nil {
			return nil, be.Errorf("list %s: %w", dir, err)
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// readDir lists dir, retried on a new connection if the first was lost; a
// missing dir is empty.
func (c *ReplicaClient) readDir(ctx context.Context, dir string) (fis []os.FileInfo, err error) {
	err = c.retry(ctx, func(client *sftp.Client) error {
		if fis, err = client.ReadDir(dir); errors.Is(err, os.ErrNotExist) {
			fis = nil
			return nil
		}
		return err
	})
	return fis, err
}

// OpenLTXFile opens a file at offset, limited to size bytes when size > 0.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	filename := c.filename(level, minTXID, maxTXID)
	f, err := c.open(ctx, filename)
	if err == nil && offset > 0 {
		if _, err = f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			err = fmt.Errorf("seek to %d: %w", offset, err)
		}
	}
	// The SDK's "no such file" already matches os.ErrNotExist.
	return be.Opened(filename, level, minTXID, maxTXID, size, f, err, func(error) bool { return false })
}

// open opens a file for reading, retried on a new connection if the first
// was lost.
func (c *ReplicaClient) open(ctx context.Context, name string) (f *sftp.File, err error) {
	err = c.retry(ctx, func(client *sftp.Client) error {
		f, err = client.OpenFile(name, os.O_RDONLY)
		return err
	})
	return f, err
}

// filename returns "<path>/ltx/<level>/<min>-<max>.ltx".
func (c *ReplicaClient) filename(level int, minTXID, maxTXID ltx.TXID) string {
	return litestream.LTXFilePath(c.Path, level, minTXID, maxTXID)
}

// WriteLTXFile writes r to a temporary file, sets its times to the LTX
// header timestamp and renames it into place.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	client, err := c.init(ctx)
	if err != nil {
		return nil, err
	}
	return be.WriteLTX(level, minTXID, maxTXID, r, c.filename, func(filename string, r io.Reader, timestamp time.Time) (int64, error) {
		size, err := c.writeFile(ctx, client, filename, timestamp, r)
		if err != nil {
			c.resetOnLost(client, err)
		}
		return size, err
	})
}

func (c *ReplicaClient) writeFile(ctx context.Context, client *sftp.Client, filename string, timestamp time.Time, r io.Reader) (n int64, err error) {
	if err := client.MkdirAll(path.Dir(filename)); err != nil {
		return 0, fmt.Errorf("mkdir %s: %w", path.Dir(filename), err)
	}

	c.removeStaleTemps(client, path.Dir(filename))

	tmp := internal.LTXTempName(filename)
	f, err := client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = client.Remove(tmp)
		}
	}()

	cr := contextReader{ctx: ctx, r: r}
	if c.ConcurrentWrites {
		n, err = f.ReadFromWithConcurrency(cr, 0) // pipelines writes of unknown-length streams
	} else {
		n, err = f.ReadFrom(cr)
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := client.Chtimes(tmp, timestamp, timestamp); err != nil {
		return n, fmt.Errorf("set times of %s: %w", tmp, err)
	}
	if err := rename(client, tmp, filename); err != nil {
		return n, err
	}
	return n, nil
}

// removeStaleTemps removes from dir, if due, the temporary files of writers
// killed before their rename: those untouched for internal.StaleTempAge. A
// temporary file's times are set to the LTX timestamp just before its
// rename, so a sweep in that instant can remove a live one; that upload then
// fails at the rename and is retried. Failures are logged, not returned.
func (c *ReplicaClient) removeStaleTemps(client *sftp.Client, dir string) {
	c.sweeper.Sweep(c.logger.Get(be), dir, func() ([]os.FileInfo, error) { return client.ReadDir(dir) },
		func(name string) error { return client.Remove(path.Join(dir, name)) })
}

// rename moves tmp over filename. OpenSSH refuses a plain SFTPv3 rename onto
// an existing file, so posix-rename@openssh.com comes first.
func rename(client *sftp.Client, tmp, filename string) error {
	posixErr := client.PosixRename(tmp, filename)
	if posixErr == nil {
		return nil
	}
	err := client.Rename(tmp, filename)
	if err == nil {
		return nil
	}
	// Last resort for servers with neither: not atomic, but never leaves
	// the old content under the final name. Only while tmp is there to
	// take its place: a swept tmp must not cost the stored file too.
	if _, statErr := client.Stat(tmp); statErr != nil {
		return fmt.Errorf("rename %s to %s: %w (posix-rename: %v)", tmp, filename, err, posixErr)
	}
	if _, statErr := client.Stat(filename); statErr == nil {
		if rmErr := client.Remove(filename); rmErr == nil {
			if err = client.Rename(tmp, filename); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("rename %s to %s: %w (posix-rename: %v)", tmp, filename, err, posixErr)
}

// contextReader stops a copy when its context is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (r contextReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// DeleteLTXFiles removes the files, ignoring missing ones.
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	return be.DeleteEach(a, c.filename, func(filename string) error {
		return c.retry(ctx, func(client *sftp.Client) error {
			if err := client.Remove(filename); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		})
	})
}

// DeleteAll removes Path and everything under it. With an empty Path, the
// login directory, it removes the replica's "ltx" tree only.
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	root := c.Path
	if root == "" {
		root = litestream.LTXDir("")
	}
	err := c.retry(ctx, func(client *sftp.Client) error {
		var dirs []string
		walker := client.Walk(root)
		for walker.Step() {
			if err := walker.Err(); errors.Is(err, os.ErrNotExist) {
				continue // root missing, or removed while walking
			} else if err != nil {
				return err
			}
			if walker.Stat().IsDir() {
				dirs = append(dirs, walker.Path())
				continue
			}
			if err := client.Remove(walker.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := client.RemoveDirectory(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return be.Errorf("delete all under %q: %w", c.Path, err)
	}
	return nil
}

// Close closes the connection, if any. The client redials on next use.
func (c *ReplicaClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftpClient == nil {
		return nil
	}
	err := c.sftpClient.Close()
	if e := c.sshClient.Close(); err == nil && !errors.Is(e, net.ErrClosed) {
		err = e
	}
	c.sftpClient, c.sshClient = nil, nil
	return err
}

// Cleanup removes the (empty) Path directory.
func (c *ReplicaClient) Cleanup(ctx context.Context) error {
	return c.retry(ctx, func(client *sftp.Client) error {
		if err := client.RemoveDirectory(c.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return be.Errorf("remove %s: %w", c.Path, err)
		}
		return nil
	})
}
