// Tests of the control server, through a real HTTP client over its unix
// socket.
package litestream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// shortSocketPath returns a socket path under a fresh directory of /tmp:
// t.TempDir paths can exceed the 108-byte limit of unix socket names.
func shortSocketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// controlClient talks HTTP to a server's socket.
type controlClient struct {
	t    *testing.T
	http *http.Client
}

func newControlClient(t *testing.T, socketPath string) *controlClient {
	return &controlClient{t: t, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		}},
	}}
}

// do sends a request with a raw body and decodes the JSON answer into out,
// returning the status code.
func (c *controlClient) do(method, path, body string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); out != nil && ct != "application/json" {
		c.t.Fatalf("%s %s: content type %q, body %s", method, path, ct, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

func (c *controlClient) post(path string, req any, out any) int {
	c.t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(http.MethodPost, path, string(body), out)
}

// mustFail checks an error answer's status and that its message holds want.
func (c *controlClient) mustFail(method, path, body string, status int, want string) litestream.ErrorResponse {
	c.t.Helper()
	var e litestream.ErrorResponse
	if got := c.do(method, path, body, &e); got != status || !strings.Contains(e.Error, want) {
		c.t.Fatalf("%s %s %s: %d %+v, want %d with error containing %q", method, path, body, got, e, status, want)
	}
	return e
}

// startControlServer opens a store of one database, replicated by explicit
// syncs only, and a server for it.
func startControlServer(t *testing.T, configure ...func(*litestream.Server, *litestream.DB)) (*litestream.Server, *litestream.Store, *litestream.DB, *controlClient) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db := MustNewDB(t, filepath.Join(dir, "db"), file.NewReplicaClient(filepath.Join(dir, "replica")))
	db.MonitorInterval = 0
	db.Replica.MonitorEnabled = false
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
	store.CompactionMonitorEnabled = false
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(ctx) })

	server := litestream.NewServer(store)
	server.SocketPath = shortSocketPath(t)
	server.Version = "v0.5.0-test"
	for _, fn := range configure {
		fn(server, db)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return server, store, db, newControlClient(t, server.SocketPath)
}

func TestServer_InfoListTXID(t *testing.T) {
	_, _, db, c := startControlServer(t)
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsert(t, app, 1)

	var info litestream.InfoResponse
	if c.do(http.MethodGet, "/info", "", &info) != http.StatusOK || info.Version != "v0.5.0-test" ||
		info.PID != os.Getpid() || info.DatabaseCount != 1 || info.StartedAt.IsZero() || info.UptimeSeconds < 0 {
		t.Fatalf("/info = %+v", info)
	}

	var list litestream.ListResponse
	if c.do(http.MethodGet, "/list", "", &list) != http.StatusOK || len(list.Databases) != 1 ||
		list.Databases[0].Path != db.Path() || list.Databases[0].Status != "open" {
		t.Fatalf("/list = %+v, want the database, open (no background replication)", list)
	}

	var sync litestream.SyncResponse
	if c.post("/sync", litestream.SyncRequest{Path: db.Path(), Wait: true}, &sync) != http.StatusOK {
		t.Fatalf("/sync: %+v", sync)
	}
	var txid litestream.TXIDResponse
	if c.do(http.MethodGet, "/txid?path="+db.Path(), "", &txid) != http.StatusOK || txid.TXID != sync.TXID || txid.TXID == 0 {
		t.Fatalf("/txid = %+v, want %d", txid, sync.TXID)
	}
	c.mustFail(http.MethodGet, "/txid", "", http.StatusBadRequest, "path required")
	c.mustFail(http.MethodGet, "/txid?path=/nope.db", "", http.StatusNotFound, "database not found")

	if c.do(http.MethodGet, "/list", "", &list) != http.StatusOK || list.Databases[0].LastSyncAt == nil {
		t.Fatalf("/list after a sync = %+v, want last_sync_at", list)
	}

	var diag litestream.SyncDiagnosticsResponse
	if c.do(http.MethodGet, "/debug/sync-status", "", &diag) != http.StatusOK || len(diag.Databases) != 1 ||
		diag.Databases[0].Path != db.Path() || diag.Databases[0].TXID != sync.TXID {
		t.Fatalf("/debug/sync-status = %+v", diag)
	}
	c.mustFail(http.MethodGet, "/debug/sync-status?path=/nope.db", "", http.StatusNotFound, "database not found")
}

func TestServer_Sync(t *testing.T) {
	_, _, db, c := startControlServer(t)
	app := MustOpenApp(t, db.Path(), 4096)

	c.mustFail(http.MethodPost, "/sync", `{}`, http.StatusBadRequest, "path required")
	c.mustFail(http.MethodPost, "/sync", `{"path": "/nope.db"}`, http.StatusNotFound, "database not found")

	mustInsert(t, app, 1)
	var res litestream.SyncResponse
	if c.post("/sync", litestream.SyncRequest{Path: db.Path()}, &res) != http.StatusOK || res.Status != "synced_local" || res.Path != db.Path() || res.TXID == 0 {
		t.Fatalf("sync without wait = %+v, want synced_local", res)
	}
	if c.post("/sync", litestream.SyncRequest{Path: db.Path()}, &res) != http.StatusOK || res.Status != "no_change" {
		t.Fatalf("sync without a write = %+v, want no_change", res)
	}

	mustInsert(t, app, 2)
	before := res.TXID
	if c.post("/sync", litestream.SyncRequest{Path: db.Path(), Wait: true, Timeout: 10}, &res) != http.StatusOK ||
		res.Status != "synced" || res.TXID <= before || res.ReplicatedTXID != res.TXID {
		t.Fatalf("sync with wait = %+v, want synced, replicated up to the new TXID", res)
	}
	if got := db.Replica.Pos().TXID; uint64(got) != res.TXID {
		t.Fatalf("replica at %d after a waited sync, want %d", got, res.TXID)
	}
}

func TestServer_StartStop(t *testing.T) {
	_, _, db, c := startControlServer(t)
	path := db.Path()

	var stop litestream.StopResponse
	if c.post("/stop", litestream.StopRequest{Path: path}, &stop) != http.StatusOK || stop.Status != "stopped" || db.IsOpen() {
		t.Fatalf("/stop = %+v, open %v", stop, db.IsOpen())
	}
	if c.post("/stop", litestream.StopRequest{Path: path}, &stop) != http.StatusOK || stop.Status != "already_stopped" {
		t.Fatalf("second /stop = %+v", stop)
	}
	c.mustFail(http.MethodPost, "/sync", fmt.Sprintf(`{"path": %q}`, path), http.StatusConflict, "not open")

	var list litestream.ListResponse
	if c.do(http.MethodGet, "/list", "", &list); list.Databases[0].Status != "stopped" {
		t.Fatalf("/list of a stopped database = %+v", list)
	}

	var start litestream.StartResponse
	if c.post("/start", litestream.StartRequest{Path: path, Timeout: 5}, &start) != http.StatusOK || start.Status != "started" || !db.IsOpen() {
		t.Fatalf("/start = %+v, open %v", start, db.IsOpen())
	}
	if c.post("/start", litestream.StartRequest{Path: path}, &start) != http.StatusOK || start.Status != "already_running" {
		t.Fatalf("second /start = %+v", start)
	}
	c.mustFail(http.MethodPost, "/start", `{"path": "/nope.db"}`, http.StatusInternalServerError, "database not found")
	c.mustFail(http.MethodPost, "/stop", `{"path": "/nope.db"}`, http.StatusInternalServerError, "database not found")
	c.mustFail(http.MethodPost, "/start", ``, http.StatusBadRequest, "invalid request body")
	c.mustFail(http.MethodPost, "/stop", `{}`, http.StatusBadRequest, "path required")
}

func TestServer_RegisterUnregister(t *testing.T) {
	_, store, _, c := startControlServer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	replicaURL := "file://" + filepath.Join(dir, "replica")

	c.mustFail(http.MethodPost, "/register", fmt.Sprintf(`{"replica_url": %q}`, replicaURL), http.StatusBadRequest, "path required")
	c.mustFail(http.MethodPost, "/register", fmt.Sprintf(`{"path": %q}`, path), http.StatusBadRequest, "replica_url required")
	c.mustFail(http.MethodPost, "/register", fmt.Sprintf(`{"path": %q, "replica_url": "invalid://x"}`, path), http.StatusBadRequest, "invalid replica url")
	c.mustFail(http.MethodPost, "/register", fmt.Sprintf(`{"path": "rel.db", "replica_url": %q}`, replicaURL), http.StatusBadRequest, "path must be absolute")

	var reg litestream.RegisterDatabaseResponse
	if c.post("/register", litestream.RegisterDatabaseRequest{Path: path, ReplicaURL: replicaURL}, &reg) != http.StatusOK || reg.Status != "registered" || reg.Path != path {
		t.Fatalf("/register = %+v", reg)
	}
	db := store.FindDB(path)
	if db == nil || !db.IsOpen() || len(store.DBs()) != 2 {
		t.Fatalf("after /register: db %v, %d databases", db, len(store.DBs()))
	}
	if c.post("/register", litestream.RegisterDatabaseRequest{Path: path, ReplicaURL: replicaURL}, &reg) != http.StatusOK || reg.Status != "already_exists" {
		t.Fatalf("second /register = %+v", reg)
	}

	// The registered database replicates.
	app := MustOpenApp(t, path, 4096)
	mustInsert(t, app, 7)
	var sync litestream.SyncResponse
	if c.post("/sync", litestream.SyncRequest{Path: path, Wait: true}, &sync) != http.StatusOK || sync.ReplicatedTXID == 0 {
		t.Fatalf("/sync of the registered database = %+v", sync)
	}

	var unreg litestream.UnregisterDatabaseResponse
	c.mustFail(http.MethodPost, "/unregister", `{}`, http.StatusBadRequest, "path required")
	if c.post("/unregister", litestream.UnregisterDatabaseRequest{Path: "/nope.db"}, &unreg) != http.StatusOK || unreg.Status != "not_registered" || unreg.TXID != 0 {
		t.Fatalf("/unregister of an unknown path = %+v", unreg)
	}
	if c.post("/unregister", litestream.UnregisterDatabaseRequest{Path: path, Timeout: 10}, &unreg) != http.StatusOK ||
		unreg.Status != "unregistered" || unreg.TXID != sync.TXID {
		t.Fatalf("/unregister = %+v, want unregistered at TXID %d", unreg, sync.TXID)
	}
	if store.FindDB(path) != nil || db.IsOpen() {
		t.Fatal("database still registered or open after /unregister")
	}
}

// Wrong methods, unknown routes and malformed bodies get JSON errors that say
// what to send instead.
func TestServer_BadRequests(t *testing.T) {
	_, _, _, c := startControlServer(t)

	e := c.mustFail(http.MethodPost, "/sync", `{"path": `, http.StatusBadRequest, "invalid request body")
	if d, _ := e.Details.(string); d == "" {
		t.Fatalf("malformed JSON: no details in %+v", e)
	}
	e = c.mustFail(http.MethodPost, "/sync", ``, http.StatusBadRequest, "invalid request body")
	if d, _ := e.Details.(string); !strings.Contains(d, `{"path"`) {
		t.Fatalf("empty body: details %+v do not show what to send", e.Details)
	}
	c.mustFail(http.MethodPost, "/sync", `[1, 2]`, http.StatusBadRequest, "invalid request body")
	c.mustFail(http.MethodGet, "/sync", ``, http.StatusMethodNotAllowed, "use POST")
	c.mustFail(http.MethodPost, "/list", ``, http.StatusMethodNotAllowed, "use GET")
	e = c.mustFail(http.MethodGet, "/nope", ``, http.StatusNotFound, "unknown endpoint GET /nope")
	if routes, _ := e.Details.([]any); len(routes) == 0 {
		t.Fatalf("unknown endpoint: details %+v do not list the endpoints", e.Details)
	}

	// Profiles are served without touching http.DefaultServeMux.
	req, _ := http.NewRequest(http.MethodGet, "http://localhost/debug/pprof/goroutine?debug=1", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("goroutine")) {
		t.Fatalf("goroutine profile: %d %.100s", resp.StatusCode, body)
	}
	if _, pattern := http.DefaultServeMux.Handler(req); pattern != "" {
		t.Fatalf("http.DefaultServeMux serves %q", pattern)
	}
}

func TestServer_PathExpander(t *testing.T) {
	_, _, _, c := startControlServer(t, func(server *litestream.Server, db *litestream.DB) {
		server.PathExpander = func(p string) (string, error) {
			if p == "~bad" {
				return "", errors.New("no such user")
			}
			return strings.Replace(p, "~", filepath.Dir(db.Path()), 1), nil
		}
	})
	var txid litestream.TXIDResponse
	if c.do(http.MethodGet, "/txid?path=~/db", "", &txid) != http.StatusOK {
		t.Fatal("expanded path not found")
	}
	c.mustFail(http.MethodPost, "/stop", `{"path": "~bad"}`, http.StatusBadRequest, "invalid path: no such user")
}

func TestServer_Socket(t *testing.T) {
	store := litestream.NewStore(nil, litestream.CompactionLevels{{Level: 0}})

	for _, perms := range []uint32{0o600, 0o660} {
		server := litestream.NewServer(store)
		server.SocketPath = shortSocketPath(t)
		server.SocketPerms = perms
		if err := server.Start(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(server.SocketPath)
		if err != nil {
			t.Fatal(err)
		} else if fi.Mode()&os.ModeSocket == 0 || uint32(fi.Mode().Perm()) != perms {
			t.Fatalf("socket mode %s, want a socket with %o", fi.Mode(), perms)
		}
		if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(server.SocketPath), ".*")); len(matches) != 0 {
			t.Fatalf("temporary files left beside the socket: %v", matches)
		}
		if err := server.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(server.SocketPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("socket still there after Close: %v", err)
		}
	}

	// A stale socket is replaced; a regular file is not.
	path := shortSocketPath(t)
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()
	server := litestream.NewServer(store)
	server.SocketPath = path
	if err := server.Start(); err != nil {
		t.Fatalf("start over a stale socket: %v", err)
	}
	var info litestream.InfoResponse
	if newControlClient(t, path).do(http.MethodGet, "/info", "", &info) != http.StatusOK {
		t.Fatal("/info over the replaced socket failed")
	}
	if err := server.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	_ = server.Close()

	regular := shortSocketPath(t)
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	server = litestream.NewServer(store)
	server.SocketPath = regular
	if err := server.Start(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("start over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(regular); string(data) != "keep me" {
		t.Fatal("regular file at the socket path was changed")
	}

	if err := litestream.NewServer(store).Start(); err == nil || !strings.Contains(err.Error(), "socket path required") {
		t.Fatalf("start without a path: %v", err)
	}
	if err := (&litestream.Server{SocketPath: shortSocketPath(t)}).Start(); err == nil || !strings.Contains(err.Error(), "NewServer") {
		t.Fatalf("start of a zero Server: %v", err)
	}
	if err := (&litestream.Server{}).Close(); err != nil {
		t.Fatalf("close of a zero Server: %v", err)
	}
	if c := litestream.DefaultSocketConfig(); c.Enabled || c.Path != "/var/run/litestream.sock" || c.Permissions != 0o600 {
		t.Fatalf("DefaultSocketConfig() = %+v", c)
	}
}
