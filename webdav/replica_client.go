// Package webdav implements a ReplicaClient that stores LTX files on a
// WebDAV server, laid out as <path>/ltx/<level>/<min>-<max>.ltx.
//
// URL form: webdav://[user[:password]@]host[:port]/path for http, and
// webdavs://… for https. Host is required; there are no query parameters.
//
// Atomicity: the stream is spooled to a local temporary file so that the
// upload has a Content-Length (chunked uploads are mishandled by several
// servers), PUT under a unique temporary name beside the final one
// ("<min>-<max>.ltx.<pid>.<nanos>.<seq>.tmp", which listings skip), then
// moved into place with MOVE and Overwrite: T. On file-backed servers the
// move is a rename, so readers see the old file or the whole new one. The
// temporary uploads of writers killed before their MOVE are removed by the
// next write to the same directory once untouched for an hour
// (internal.StaleTempAge).
//
// Timestamps: WebDAV offers no portable way to set a resource's
// modification time, so the server's time of upload is all a listing
// carries. LTXFiles with useMetadata=false reports it; with useMetadata=true
// the client reads the first 100 bytes of each file (in parallel) and reports
// the LTX header timestamp exactly. Upstream reported the upload time in both
// modes, which broke point-in-time restore.
//
// Every request carries the caller's context, and requests that fail with a
// network error or a 5xx status are retried.
package webdav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/studio-b12/gowebdav"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "webdav"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// DefaultTimeout bounds connecting and waiting for a response when Timeout
// is zero.
const DefaultTimeout = 30 * time.Second

// ReplicaClient stores LTX files on a WebDAV server.
type ReplicaClient struct {
	// URL is the server's base URL, e.g. https://dav.example.com/remote.php. Required.
	URL string
	// Username and Password are used for Basic or Digest authentication.
	Username string
	Password string
	// Path is the root directory under URL.
	Path string
	// Timeout bounds connecting and the wait for each response's headers;
	// zero means DefaultTimeout. A transfer itself is not cut short: a
	// large snapshot may stream for longer.
	Timeout time.Duration

	initMu    sync.Mutex // serializes Init
	mu        sync.Mutex // guards ready, auth and the transports
	ready     bool       // Init connected
	auth      gowebdav.Authorizer
	transport http.RoundTripper
	// uploads waits for response headers as long as the server reads the
	// body (see uploadDeadline), which a slow link makes longer than Timeout.
	uploads http.RoundTripper

	logger  backend.Logger
	sweeper internal.TempSweeper // when each level directory was last swept
}

// NewReplicaClient returns a client with the default timeout.
func NewReplicaClient() *ReplicaClient {
	return &ReplicaClient{Timeout: DefaultTimeout}
}

// NewReplicaClientFromURL builds a client from a parsed webdav:// or
// webdavs:// URL.
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	var httpScheme string
	switch scheme {
	case "webdav":
		httpScheme = "http"
	case "webdavs":
		httpScheme = "https"
	default:
		return nil, fmt.Errorf("webdav replica url: unsupported scheme %q (want webdav or webdavs)", scheme)
	}
	if host == "" {
		return nil, fmt.Errorf("webdav replica url: host required (%s://[user[:password]@]host[:port]/path)", scheme)
	}
	c := NewReplicaClient()
	c.URL = httpScheme + "://" + host
	c.Path = litestream.CleanReplicaURLPath(urlPath)
	if userinfo != nil {
		c.Username = userinfo.Username()
		c.Password, _ = userinfo.Password()
	}
	return c, nil
}

func init() {
	// The registry looks webdavs:// up under "webdav" too.
	litestream.RegisterReplicaClientFactory("webdav", NewReplicaClientFromURL)
}

// Type returns "webdav".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// String returns the replica's location for messages, without passwords.
func (c *ReplicaClient) String() string {
	return internal.ReplicaLocation(c.URL, c.Path)
}

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Init checks the configuration and that the server answers (a PROPFIND of
// the base URL). It is idempotent.
func (c *ReplicaClient) Init(ctx context.Context) error {
	// One Init at a time: callers that come while it connects wait for it,
	// rather than going on with a client that is not set up.
	c.initMu.Lock()
	defer c.initMu.Unlock()
	c.mu.Lock()
	ready := c.ready
	c.mu.Unlock()
	if ready {
		return nil
	}
	if c.URL == "" {
		return errors.New("webdav url required") // the text tests and users match
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c.mu.Lock()
	if c.auth == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
		uploads := transport.Clone()
		transport.ResponseHeaderTimeout = timeout
		c.auth, c.transport, c.uploads = gowebdav.NewAutoAuth(c.Username, c.Password), transport, uploads
	}
	c.mu.Unlock()

	if err := backend.Retry(ctx, isTransient, func() error { return c.client(ctx).Connect() }); err != nil {
		return be.Errorf("connect to %s: %w", c.URL, err)
	}
	c.mu.Lock()
	c.ready = true
	c.mu.Unlock()
	return nil
}

// client returns a gowebdav client whose requests carry ctx. Clients share
// the negotiated authentication and the connection pool.
func (c *ReplicaClient) client(ctx context.Context) *gowebdav.Client {
	c.mu.Lock()
	transport := c.transport
	c.mu.Unlock()
	return c.clientWith(ctx, transport)
}

// minUploadRate is the slowest an upload may go, in bytes per second,
// before it counts as stalled.
const minUploadRate = 64 << 10

// uploadClient is client for a PUT of size bytes: it waits for the server
// up to Timeout plus the time size takes at minUploadRate.
func (c *ReplicaClient) uploadClient(ctx context.Context, size int64) (*gowebdav.Client, context.CancelFunc) {
	c.mu.Lock()
	transport := c.uploads
	c.mu.Unlock()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Duration(size/minUploadRate+1)*time.Second)
	return c.clientWith(ctx, transport), cancel
}

func (c *ReplicaClient) clientWith(ctx context.Context, transport http.RoundTripper) *gowebdav.Client {
	c.mu.Lock()
	auth := c.auth
	c.mu.Unlock()

	client := gowebdav.NewAuthClient(c.URL, auth)
	client.SetTransport(transport)
	client.SetInterceptor(func(_ string, rq *http.Request) {
		*rq = *rq.WithContext(ctx)
	})
	return client
}

func (c *ReplicaClient) levelDir(level int) string {
	return "/" + litestream.LTXLevelDir(c.Path, level)
}

func (c *ReplicaClient) filePath(level int, minTXID, maxTXID ltx.TXID) string {
	return "/" + litestream.LTXFilePath(c.Path, level, minTXID, maxTXID)
}

// LTXFiles lists a level's files with MinTXID >= seek in TXID order.
// CreatedAt is the upload time, or with useMetadata the LTX header
// timestamp read from each file.
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	if err := c.Init(ctx); err != nil {
		return nil, err
	}
	var fis []os.FileInfo
	err := backend.Retry(ctx, isTransient, func() (err error) {
		fis, err = c.client(ctx).ReadDir(c.levelDir(level))
		return err
	})
	if isNotExist(err) {
		return ltx.NewFileInfoSliceIterator(nil), nil
	} else if err != nil {
		return nil, be.Errorf("list %s: %w", c.levelDir(level), err)
	}

	infos := make([]*ltx.FileInfo, 0, len(fis))
	for _, fi := range fis {
		if info := backend.FileInfo(fi.Name(), level, seek, fi.Size(), fi.ModTime()); info != nil && !fi.IsDir() {
			infos = append(infos, info)
		}
	}
	if useMetadata {
		if err := litestream.FetchLTXHeaderTimestamps(ctx, c, infos); err != nil {
			return nil, be.Errorf("list %s: %w", c.levelDir(level), err)
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil // sorts by TXID
}

// OpenLTXFile returns the file from offset, limited to size bytes when
// size > 0. Ranged reads use a Range header; servers that ignore it are
// handled by skipping and limiting the body.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if err := c.Init(ctx); err != nil {
		return nil, err
	}
	name := c.filePath(level, minTXID, maxTXID)
	var rc io.ReadCloser
	err := backend.Retry(ctx, isTransient, func() (err error) {
		if size > 0 {
			rc, err = c.client(ctx).ReadStreamRange(name, offset, size)
		} else {
			rc, err = c.client(ctx).ReadStream(name)
		}
		return err
	})
	if statusCode(err) == http.StatusRequestedRangeNotSatisfiable {
		return io.NopCloser(strings.NewReader("")), nil // offset at the end
	}
	if err == nil && size <= 0 && offset > 0 {
		// gowebdav limits a range-ignoring server's open-ended range to
		// zero bytes, so skip the offset here.
		if _, err = io.CopyN(io.Discard, rc, offset); err == io.EOF {
			_ = rc.Close()
			return io.NopCloser(strings.NewReader("")), nil
		} else if err != nil {
			_ = rc.Close()
			err = fmt.Errorf("skip to %d: %w", offset, err)
		}
	}
	return be.Opened(name, level, minTXID, maxTXID, size, rc, err, isNotExist)
}

// WriteLTXFile spools r to a local temporary file, uploads it under a
// temporary name and moves it into place.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if err := c.Init(ctx); err != nil {
		return nil, err
	}
	return be.WriteLTX(level, minTXID, maxTXID, r, c.filePath, func(name string, r io.Reader, _ time.Time) (int64, error) {
		spool, err := os.CreateTemp("", "litestream-webdav-*.ltx")
		if err != nil {
			return 0, fmt.Errorf("create spool file: %w", err)
		}
		defer func() { _ = spool.Close(); _ = os.Remove(spool.Name()) }()
		size, err := io.Copy(spool, r)
		if err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
		return size, c.upload(ctx, name, spool, size)
	})
}

func (c *ReplicaClient) upload(ctx context.Context, name string, spool *os.File, size int64) error {
	dir := path.Dir(name)
	if err := backend.Retry(ctx, isTransient, func() error { return c.client(ctx).MkdirAll(dir, 0o755) }); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}

	c.removeStaleTemps(ctx, dir)

	tmp := internal.LTXTempName(name)
	err := backend.Retry(ctx, isTransient, func() error {
		// A fresh reader per try: the transport closes a body it is given
		// if it can, and a section reader cannot be closed.
		client, cancel := c.uploadClient(ctx, size)
		defer cancel()
		return client.WriteStreamWithLength(tmp, io.NewSectionReader(spool, 0, size), size, 0o644)
	})
	if err == nil {
		err = backend.Retry(ctx, isTransient, func() error { return c.client(ctx).Rename(tmp, name, true) })
	}
	if err != nil {
		_ = c.client(context.WithoutCancel(ctx)).Remove(tmp)
		return err
	}
	return nil
}

// removeStaleTemps removes from dir, if due, the temporary uploads of
// writers killed before their MOVE: those the server last modified
// internal.StaleTempAge ago or more. Failures are logged, not returned.
func (c *ReplicaClient) removeStaleTemps(ctx context.Context, dir string) {
	c.sweeper.Sweep(c.logger.Get(be), dir, func() (fis []os.FileInfo, err error) {
		err = backend.Retry(ctx, isTransient, func() error { fis, err = c.client(ctx).ReadDir(dir); return err })
		return fis, err
	}, func(name string) error { return c.remove(ctx, path.Join(dir, name)) })
}

// DeleteLTXFiles deletes the files, ignoring missing ones.
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	if err := c.Init(ctx); err != nil {
		return err
	}
	return be.DeleteEach(a, c.filePath, func(name string) error { return c.remove(ctx, name) })
}

// DeleteAll removes Path and everything under it. With an empty Path, the
// base directory, it removes the replica's "ltx" tree only.
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	if err := c.Init(ctx); err != nil {
		return err
	}
	target := "/" + c.Path
	if c.Path == "" {
		target = "/" + litestream.LTXDir("")
	}
	if err := c.remove(ctx, target); err != nil {
		return be.Errorf("delete all under %q: %w", c.Path, err)
	}
	return nil
}

// remove deletes a file or directory tree, ignoring a missing one.
func (c *ReplicaClient) remove(ctx context.Context, name string) error {
	err := backend.Retry(ctx, isTransient, func() error { return c.client(ctx).RemoveAll(name) })
	if ctxErr := ctx.Err(); err != nil && ctxErr != nil {
		return ctxErr // gowebdav reports a failed DELETE request as status 400
	} else if err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

// isNotExist reports whether err means the resource is missing.
func isNotExist(err error) bool {
	return err != nil && (gowebdav.IsErrNotFound(err) || errors.Is(err, os.ErrNotExist))
}

// statusCode returns the HTTP status of a gowebdav error, or 0.
func statusCode(err error) int {
	var se gowebdav.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// isTransient reports network errors and 5xx answers (other than 501 and
// 505, which will not change).
func isTransient(err error) bool {
	if code := statusCode(err); code != 0 {
		return code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
