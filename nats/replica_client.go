// Package nats implements a ReplicaClient that stores LTX files as objects
// in a NATS JetStream object store bucket, named
// <path>/ltx/<level>/<min>-<max>.ltx.
//
// URL form: nats://[user:password@]host[:port]/bucket. The URL path is the
// bucket name and is required; there are no query parameters, and Path (the
// object-name prefix) can only be set in code or configuration. The bucket
// must already exist: the client never creates it.
//
// Authentication, in order of precedence: JWT with Seed, a Creds file, NKey
// (signed by SigCB), Username with Password, Token; UserJWT adds a JWT
// callback. TLS, ClientCert/ClientKey and RootCAs configure TLS.
//
// Consistency and atomicity: JetStream is strongly consistent within a
// cluster. Put streams the object in chunks and publishes its metadata last,
// so readers see either the previous object or the whole new one. The LTX
// header timestamp is stored in the object header "Litestream-Timestamp"
// (RFC 3339), returned by listings, so CreatedAt is exact in both listing
// modes. The object store has no prefix listing, so LTXFiles lists the whole
// bucket and filters by name; it has no ranged reads either, so an offset is
// skipped by reading. Deletes are one request per object. DeleteAll removes
// only the objects under Path.
package nats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// ReplicaClientType is the client's type name.
const ReplicaClientType = "nats"

// be applies the rules every backend shares (errors, writes) to this one.
const be backend.Name = ReplicaClientType

// HeaderKeyTimestamp is the object header holding the LTX header timestamp.
const HeaderKeyTimestamp = "Litestream-Timestamp"

// ReplicaClient stores LTX files in a JetStream object store.
type ReplicaClient struct {
	// URL is the server URL; default nats.DefaultURL (nats://127.0.0.1:4222).
	URL string
	// BucketName is the object store bucket. Required; it must exist.
	BucketName string
	// Path is the object-name prefix; empty means the bucket root.
	Path string

	// JWT and Seed authenticate with a user JWT and its NKey seed.
	JWT  string
	Seed string
	// Creds is a credentials file holding a JWT and seed.
	Creds string
	// NKey is a public NKey; SigCB signs the server's nonce with it.
	NKey string
	// Username and Password authenticate with user and password.
	Username string
	Password string
	// Token authenticates with a token.
	Token string

	// TLS requires a TLS connection.
	TLS bool
	// RootCAs are PEM files of CAs that verify the server.
	RootCAs []string
	// ClientCert and ClientKey are PEM files for mutual TLS.
	ClientCert string
	ClientKey  string

	// MaxReconnects is the reconnect attempts; -1 (default) is unlimited.
	MaxReconnects int
	// ReconnectWait is the pause between reconnects; default 2s.
	ReconnectWait time.Duration
	// ReconnectJitter is added at random to ReconnectWait; zero is none.
	ReconnectJitter time.Duration
	// Timeout bounds connecting; default 10s.
	Timeout time.Duration
	// PingInterval is the keep-alive period; default 2m.
	PingInterval time.Duration
	// MaxPingsOut is the unanswered pings before the connection is
	// considered lost; default 2.
	MaxPingsOut int
	// ReconnectBufSize buffers publishes while reconnecting; default 8 MiB.
	ReconnectBufSize int

	// UserJWT returns a user JWT; SigCB signs the nonce. Optional.
	UserJWT func() (string, error)
	SigCB   func([]byte) ([]byte, error)

	mu    sync.Mutex // guards nc and store
	nc    *nats.Conn
	store jetstream.ObjectStore

	logger backend.Logger
}

// NewReplicaClient returns a client with default connection settings.
func NewReplicaClient() *ReplicaClient {
	return &ReplicaClient{
		MaxReconnects:    -1,
		ReconnectWait:    2 * time.Second,
		Timeout:          10 * time.Second,
		PingInterval:     2 * time.Minute,
		MaxPingsOut:      2,
		ReconnectBufSize: 8 << 20,
	}
}

// NewReplicaClientFromURL builds a client from a parsed nats:// URL.
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	if host == "" {
		return nil, fmt.Errorf("nats replica url: host required (nats://host[:port]/bucket)")
	}
	bucket := litestream.CleanReplicaURLPath(urlPath)
	if bucket == "" {
		return nil, fmt.Errorf("nats replica url: bucket required (nats://host[:port]/bucket)")
	} else if strings.Contains(bucket, "/") {
		return nil, fmt.Errorf("nats replica url: bucket name %q must not contain '/'", bucket)
	}
	c := NewReplicaClient()
	c.URL = "nats://" + host
	c.BucketName = bucket
	if userinfo != nil {
		c.Username = userinfo.Username()
		c.Password, _ = userinfo.Password()
	}
	return c, nil
}

func init() {
	litestream.RegisterReplicaClientFactory("nats", NewReplicaClientFromURL)
}

// Type returns "nats".
func (c *ReplicaClient) Type() string { return ReplicaClientType }

// String returns the replica's location for messages, without passwords.
func (c *ReplicaClient) String() string {
	return internal.ReplicaLocation(c.URL+"/"+c.BucketName, c.Path)
}

// SetLogger replaces the client's logger.
func (c *ReplicaClient) SetLogger(logger *slog.Logger) { c.logger.Set(be, logger) }

// Init connects and opens the bucket unless already done.
func (c *ReplicaClient) Init(ctx context.Context) error {
	_, err := c.objectStore(ctx)
	return err
}

func (c *ReplicaClient) objectStore(ctx context.Context) (jetstream.ObjectStore, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store != nil {
		return c.store, nil
	}
	if c.BucketName == "" {
		return nil, be.Errorf("bucket name required")
	}

	if c.nc == nil {
		opts, err := c.options()
		if err != nil {
			return nil, err
		}
		serverURL := c.URL
		if serverURL == "" {
			serverURL = nats.DefaultURL
		}
		nc, err := nats.Connect(serverURL, opts...)
		if err != nil {
			return nil, be.Errorf("connect to %s: %w", serverURL, err)
		}
		c.nc = nc
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, be.Errorf("jetstream: %w", err)
	}
	store, err := js.ObjectStore(ctx, c.BucketName)
	if err != nil {
		return nil, be.Errorf("open object store %q: %w", c.BucketName, err)
	}
	c.store = store
	return store, nil
}

// options turns the configuration into connection options.
func (c *ReplicaClient) options() ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("litestream"),
		nats.MaxReconnects(c.MaxReconnects),
		nats.ReconnectWait(c.ReconnectWait),
		nats.ReconnectJitter(c.ReconnectJitter, c.ReconnectJitter),
		nats.ReconnectBufSize(c.ReconnectBufSize),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.logger.Get(be).Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.logger.Get(be).Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if c.Timeout > 0 {
		opts = append(opts, nats.Timeout(c.Timeout))
	}
	if c.PingInterval > 0 {
		opts = append(opts, nats.PingInterval(c.PingInterval))
	}
	if c.MaxPingsOut > 0 {
		opts = append(opts, nats.MaxPingsOutstanding(c.MaxPingsOut))
	}

	switch {
	case c.JWT != "" && c.Seed != "":
		opts = append(opts, nats.UserJWTAndSeed(c.JWT, c.Seed))
	case c.JWT != "" || c.Seed != "":
		return nil, be.Errorf("jwt and seed must be set together")
	case c.Creds != "":
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.NKey != "":
		if c.SigCB == nil {
			return nil, be.Errorf("nkey requires a signature callback (SigCB)")
		}
		opts = append(opts, nats.Nkey(c.NKey, c.SigCB))
	case c.Username != "":
		opts = append(opts, nats.UserInfo(c.Username, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.UserJWT != nil {
		opts = append(opts, nats.UserJWT(c.UserJWT, c.SigCB))
	}

	if c.TLS {
		opts = append(opts, nats.Secure())
	}
	if c.ClientCert != "" || c.ClientKey != "" {
		if c.ClientCert == "" || c.ClientKey == "" {
			return nil, be.Errorf("client cert and key must be set together")
		}
		opts = append(opts, nats.ClientCert(c.ClientCert, c.ClientKey))
	}
	if len(c.RootCAs) > 0 {
		opts = append(opts, nats.RootCAs(c.RootCAs...))
	}
	return opts, nil
}

// Close closes the connection. The client reconnects on next use.
func (c *ReplicaClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
	}
	c.nc, c.store = nil, nil
	return nil
}

// objectName returns the object name of an LTX file.
func (c *ReplicaClient) objectName(level int, minTXID, maxTXID ltx.TXID) string {
	return litestream.LTXFilePath(c.Path, level, minTXID, maxTXID)
}

// list returns the info of every live object in the bucket.
func (c *ReplicaClient) list(ctx context.Context) ([]*jetstream.ObjectInfo, error) {
	store, err := c.objectStore(ctx)
	if err != nil {
		return nil, err
	}
	var infos []*jetstream.ObjectInfo
	err = backend.Retry(ctx, isTransient, func() (err error) {
		infos, err = store.List(ctx)
		if errors.Is(err, jetstream.ErrNoObjectsFound) {
			infos, err = nil, nil
		}
		return err
	})
	return infos, err
}

// LTXFiles lists a level's files with MinTXID >= seek in TXID order.
// Headers come with the listing, so useMetadata changes nothing.
func (c *ReplicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	prefix := litestream.LTXLevelDir(c.Path, level) + "/"
	objects, err := c.list(ctx)
	if err != nil {
		return nil, be.Errorf("list %s: %w", prefix, err)
	}
	var infos []*ltx.FileInfo
	for _, obj := range objects {
		name, ok := strings.CutPrefix(obj.Name, prefix)
		if !ok || obj.Deleted || strings.Contains(name, "/") {
			continue
		}
		// CreatedAt: the timestamp header, else the object's mtime.
		createdAt := backend.CreatedAt(obj.Headers.Get(HeaderKeyTimestamp), obj.ModTime)
		if info := backend.FileInfo(name, level, seek, int64(obj.Size), createdAt); info != nil {
			infos = append(infos, info)
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil // sorts by TXID
}

// maxObjectRead bounds reading one object when the caller's context has
// no deadline.
const maxObjectRead = 24 * time.Hour

// cancelOnClose ends an object read's context when the read is closed.
type cancelOnClose struct {
	jetstream.ObjectResult
	cancel context.CancelFunc
}

func (r cancelOnClose) Close() error {
	defer r.cancel()
	return r.ObjectResult.Close()
}

// OpenLTXFile streams an object from offset, limited to size bytes when
// size > 0. The object store has no ranged reads: the offset is read and
// discarded.
func (c *ReplicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	store, err := c.objectStore(ctx)
	if err != nil {
		return nil, err
	}
	name := c.objectName(level, minTXID, maxTXID)
	// nats.go bounds a Get whose context has no deadline, the whole read
	// included, by its 5 s default: a large file read slowly would fail
	// part-way every time. Without a deadline of the caller's, a read gets
	// maxObjectRead.
	readCtx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		readCtx, cancel = context.WithTimeout(ctx, maxObjectRead)
	}
	var obj jetstream.ObjectResult
	err = backend.Retry(ctx, isTransient, func() (err error) {
		obj, err = store.Get(readCtx, name)
		return err
	})
	if err != nil {
		cancel()
	} else {
		obj = cancelOnClose{ObjectResult: obj, cancel: cancel}
	}
	if err == nil && offset > 0 {
		if _, err = io.CopyN(io.Discard, obj, offset); err == io.EOF {
			_ = obj.Close()
			return io.NopCloser(strings.NewReader("")), nil
		} else if err != nil {
			_ = obj.Close()
			err = fmt.Errorf("skip to %d: %w", offset, err)
		}
	}
	return be.Opened(name, level, minTXID, maxTXID, size, obj, err, isNotExist)
}

// isNotExist reports whether err says the object is missing.
func isNotExist(err error) bool { return errors.Is(err, jetstream.ErrObjectNotFound) }

// WriteLTXFile streams r into an object with the LTX header timestamp as
// the Litestream-Timestamp header.
func (c *ReplicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	store, err := c.objectStore(ctx)
	if err != nil {
		return nil, err
	}
	return be.WriteLTX(level, minTXID, maxTXID, r, c.objectName, func(name string, r io.Reader, ts time.Time) (int64, error) {
		if litestream.IsCreateOnly(ctx) {
			// The object store has no conditional put: this check narrows, but
			// does not close, the window for replacing another writer's file.
			if _, err := store.GetInfo(ctx, name); err == nil {
				return 0, litestream.ErrLTXFileExists
			} else if !isNotExist(err) {
				return 0, fmt.Errorf("check for an existing file: %w", err)
			}
		}
		info, err := store.Put(ctx, jetstream.ObjectMeta{
			Name:    name,
			Headers: nats.Header{HeaderKeyTimestamp: []string{internal.FormatTimestamp(ts)}},
		}, r)
		if err != nil {
			return 0, err
		}
		return int64(info.Size), nil
	})
}

// DeleteLTXFiles deletes the objects, ignoring missing ones.
func (c *ReplicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	return be.DeleteEach(a, c.objectName, func(name string) error { return c.deleteObject(ctx, name) })
}

// DeleteAll deletes the objects under Path; with an empty Path, those of
// the replica's "ltx/" tree only. Upstream deleted the whole bucket
// regardless of Path.
func (c *ReplicaClient) DeleteAll(ctx context.Context) error {
	objects, err := c.list(ctx)
	if err != nil {
		return be.Errorf("delete all under %q: %w", c.Path, err)
	}
	prefix := litestream.LTXDir("") + "/"
	if c.Path != "" {
		prefix = path.Clean(c.Path) + "/"
	}
	for _, obj := range objects {
		if obj.Deleted || !strings.HasPrefix(obj.Name, prefix) {
			continue
		}
		if err := c.deleteObject(ctx, obj.Name); err != nil {
			return be.Errorf("delete all under %q: delete %s: %w", c.Path, obj.Name, err)
		}
	}
	return nil
}

func (c *ReplicaClient) deleteObject(ctx context.Context, name string) error {
	store, err := c.objectStore(ctx)
	if err != nil {
		return err
	}
	return backend.Retry(ctx, isTransient, func() error {
		if err := store.Delete(ctx, name); err != nil && !isNotExist(err) {
			return err
		}
		return nil
	})
}

// isTransient reports errors worth retrying: timeouts (a request's own
// deadline passing too; backend.Retry stops when the caller's has) and a
// connection that is down or reconnecting.
func isTransient(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrNoHeartbeat)
}
