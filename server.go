// The control server: HTTP over a unix socket for a running Store, with
// upstream's routes and JSON shapes (start, stop, sync, txid, list, info,
// register, unregister, sync diagnostics, and pprof profiles).

package litestream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LogSystemServer is the system attribute of the control server's logger.
const LogSystemServer = "server"

// socketSeq tells apart the temporary names of sockets being created.
var socketSeq atomic.Int64

// defaultControlTimeout bounds a stop, unregister or sync request that
// names no timeout, in seconds.
const defaultControlTimeout = 30

// SocketConfig configures the control socket.
type SocketConfig struct {
	Enabled     bool   `yaml:"enabled"`
	Path        string `yaml:"path"`
	Permissions uint32 `yaml:"permissions"`
}

// DefaultSocketConfig returns the socket configuration upstream defaults to:
// disabled, /var/run/litestream.sock, owner-only permissions.
func DefaultSocketConfig() SocketConfig {
	return SocketConfig{Enabled: false, Path: "/var/run/litestream.sock", Permissions: 0o600}
}

// Server answers control requests for a Store over a unix socket.
type Server struct {
	// SocketPath is where the socket is created. Required.
	SocketPath string

	// SocketPerms are the socket file's permissions; 0 means 0600. They are
	// in place before the socket can be reached at SocketPath.
	SocketPerms uint32

	// PathExpander, when set, turns each database path of a request into
	// the path the Store knows (for instance expanding "~").
	PathExpander func(string) (string, error)

	// Version is reported by /info.
	Version string

	store  *Store
	logger *slog.Logger

	mu         sync.Mutex // guards the fields below
	startedAt  time.Time
	listener   net.Listener
	httpServer *http.Server
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// NewServer returns a server controlling store. Call Start to listen.
func NewServer(store *Store) *Server {
	return &Server{store: store, SocketPerms: 0o600}
}

// Start creates the socket and serves requests in the background. A stale
// socket at SocketPath is replaced; any other file there is an error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return fmt.Errorf("control server has no store: create it with NewServer(store)")
	} else if s.SocketPath == "" {
		return fmt.Errorf("socket path required")
	} else if s.listener != nil {
		return fmt.Errorf("control server already started on %s", s.SocketPath)
	}
	if s.logger == nil {
		s.logger = slog.Default().With(LogKeySystem, LogSystemServer)
	}

	if fi, err := os.Lstat(s.SocketPath); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("socket path exists but is not a socket: %s (remove it or choose another path)", s.SocketPath)
		}
		if err := os.Remove(s.SocketPath); err != nil {
			return fmt.Errorf("remove existing socket: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check socket path: %w", err)
	}

	// Bind under a temporary name, set permissions, then rename into place:
	// nobody can connect through looser permissions in between.
	perms := os.FileMode(s.SocketPerms)
	if perms == 0 {
		perms = 0o600
	}
	// The temporary name is short: socket paths are limited to about 100 bytes.
	tmpPath := filepath.Join(filepath.Dir(s.SocketPath), fmt.Sprintf(".ls%d-%d", os.Getpid(), socketSeq.Add(1)))
	_ = os.Remove(tmpPath)
	ln, err := net.Listen("unix", tmpPath)
	if err != nil {
		return fmt.Errorf("listen on unix socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // Close removes SocketPath itself
	if err := os.Chmod(tmpPath, perms); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmpPath)
		return fmt.Errorf("chmod socket: %w", err)
	}
	if err := os.Rename(tmpPath, s.SocketPath); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmpPath)
		return fmt.Errorf("move socket into place at %s: %w", s.SocketPath, err)
	}

	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.listener = ln
	s.httpServer = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	s.startedAt = time.Now()
	s.logger.Info("control socket listening", "path", s.SocketPath)

	srv := s.httpServer
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("control server stopped", "error", err)
		}
	}()
	return nil
}

// Close stops serving, waiting up to 5 seconds for requests in flight, and
// removes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, cancel, path := s.httpServer, s.cancel, s.SocketPath
	started := s.listener != nil
	s.httpServer, s.listener, s.cancel = nil, nil, nil
	s.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	err := srv.Shutdown(ctx)
	s.wg.Wait()
	if e := os.Remove(path); e != nil && !errors.Is(e, os.ErrNotExist) && err == nil {
		err = fmt.Errorf("remove socket: %w", e)
	}
	return err
}

// controlRoutes are the endpoints, for the error on a wrong method or path.
var controlRoutes = map[string]string{
	"/start": http.MethodPost, "/stop": http.MethodPost, "/sync": http.MethodPost,
	"/register": http.MethodPost, "/unregister": http.MethodPost,
	"/txid": http.MethodGet, "/list": http.MethodGet, "/info": http.MethodGet,
	"/debug/sync-status": http.MethodGet,
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /start", s.handleStart)
	mux.HandleFunc("POST /stop", s.handleStop)
	mux.HandleFunc("POST /sync", s.handleSync)
	mux.HandleFunc("POST /register", s.handleRegister)
	mux.HandleFunc("POST /unregister", s.handleUnregister)
	mux.HandleFunc("GET /txid", s.handleTXID)
	mux.HandleFunc("GET /list", s.handleList)
	mux.HandleFunc("GET /info", s.handleInfo)
	mux.HandleFunc("GET /debug/sync-status", s.handleSyncStatus)
	mux.HandleFunc("GET /debug/pprof/{name...}", handlePprof)
	mux.HandleFunc("/", handleUnknownRoute)
	return mux
}

// handleUnknownRoute answers in JSON, as every other endpoint does.
func handleUnknownRoute(w http.ResponseWriter, r *http.Request) {
	if method, ok := controlRoutes[r.URL.Path]; ok {
		w.Header().Set("Allow", method)
		writeJSONError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s: use %s", r.Method, r.URL.Path, method), nil)
		return
	}
	paths := make([]string, 0, len(controlRoutes))
	for p, m := range controlRoutes {
		paths = append(paths, m+" "+p)
	}
	sort.Strings(paths)
	writeJSONError(w, http.StatusNotFound, fmt.Sprintf("unknown endpoint %s %s", r.Method, r.URL.Path), paths)
}

// decodeRequest reads a JSON request body into v, answering 400 itself when
// it cannot.
func decodeRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		detail := err.Error()
		if err.Error() == "EOF" {
			detail = `empty body: send a JSON object such as {"path": "/data/app.db"}`
		}
		writeJSONError(w, http.StatusBadRequest, "invalid request body", detail)
		return false
	}
	return true
}

// readRequest decodes a request naming a database into req and resolves
// the path it names (*path, a field of req), answering 400 itself when it
// cannot.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request, req any, path *string) (string, bool) {
	if !decodeRequest(w, r, req) {
		return "", false
	}
	return s.resolvePath(w, *path)
}

// changeDB runs change (enable, disable or unregister the database at
// path) under the request's timeout and logs done; it answers 500 itself,
// prefixed by failure, when the change fails.
func (s *Server) changeDB(w http.ResponseWriter, r *http.Request, timeout int, path string, change func(context.Context, string) error, failure, done string) bool {
	ctx, cancel := s.requestContext(r, timeout, defaultControlTimeout)
	defer cancel()
	if err := change(ctx, path); err != nil {
		writeJSONError(w, http.StatusInternalServerError, failure+err.Error(), nil)
		return false
	}
	s.logger.Info(done, "path", path)
	return true
}

// resolvePath checks and expands a request's database path, answering 400
// itself when it cannot.
func (s *Server) resolvePath(w http.ResponseWriter, path string) (string, bool) {
	if path == "" {
		writeJSONError(w, http.StatusBadRequest, "path required", nil)
		return "", false
	}
	if s.PathExpander != nil {
		expanded, err := s.PathExpander(path)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("invalid path: %v", err), nil)
			return "", false
		}
		path = expanded
	}
	return path, true
}

// requestContext bounds a request by timeout seconds, or by def when zero.
func (s *Server) requestContext(r *http.Request, timeout, def int) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = def
	}
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.ctx, cancel) // the server closing ends it too
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
	return ctx, func() { cancelTimeout(); stop(); cancel() }
}

func currentTXID(db *DB) uint64 {
	pos, err := db.Pos()
	if err != nil {
		return 0
	}
	return uint64(pos.TXID)
}

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) { s.startOrStop(w, r, true) }

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) { s.startOrStop(w, r, false) }

// startOrStop answers POST /start (start) and POST /stop: the two differ
// only in direction and words. A stop reports the TXID it stopped at.
func (s *Server) startOrStop(w http.ResponseWriter, r *http.Request, start bool) {
	var req StartRequest // StopRequest has the same fields
	path, ok := s.readRequest(w, r, &req, &req.Path)
	if !ok {
		return
	}
	respond := func(status string, txid uint64) {
		if start {
			writeJSON(w, http.StatusOK, StartResponse{Status: status, Path: path, TXID: txid})
		} else {
			writeJSON(w, http.StatusOK, StopResponse{Status: status, Path: path, TXID: txid})
		}
	}
	db := s.store.FindDB(path)
	switch {
	case db == nil && start:
		writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("database not found: %s (register it first with POST /register)", path), nil)
	case db == nil:
		writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("database not found: %s", path), nil)
	case start && db.IsOpen():
		respond("already_running", currentTXID(db))
	case !start && !db.IsOpen():
		respond("already_stopped", currentTXID(db))
	case start:
		if s.changeDB(w, r, req.Timeout, path, s.store.EnableDB, "", "database started") {
			respond("started", currentTXID(db))
		}
	default:
		txid := currentTXID(db)
		if s.changeDB(w, r, req.Timeout, path, s.store.DisableDB, "", "database stopped") {
			respond("stopped", txid)
		}
	}
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	var req SyncRequest
	path, ok := s.readRequest(w, r, &req, &req.Path)
	if !ok {
		return
	}
	ctx, cancel := s.requestContext(r, req.Timeout, defaultControlTimeout)
	defer cancel()
	res, err := s.store.SyncDB(ctx, path, req.Wait)
	switch {
	case errors.Is(err, ErrDatabaseNotFound):
		writeJSONError(w, http.StatusNotFound, "database not found", path)
		return
	case errors.Is(err, ErrDatabaseNotOpen):
		writeJSONError(w, http.StatusConflict, fmt.Sprintf("database not open: %s (start it with POST /start)", path), nil)
		return
	case err != nil:
		writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("sync failed: %v", err), nil)
		return
	}
	status := "synced_local"
	switch {
	case !res.Changed && (!req.Wait || res.ReplicatedTXID == res.TXID):
		status = "no_change"
	case req.Wait:
		status = "synced"
	}
	writeJSON(w, http.StatusOK, SyncResponse{Status: status, Path: path, TXID: res.TXID, ReplicatedTXID: res.ReplicatedTXID})
}

func (s *Server) handleTXID(w http.ResponseWriter, r *http.Request) {
	path, ok := s.resolvePath(w, r.URL.Query().Get("path"))
	if !ok {
		return
	}
	db := s.store.FindDB(path)
	if db == nil {
		writeJSONError(w, http.StatusNotFound, "database not found", path)
		return
	}
	pos, err := db.Pos()
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, TXIDResponse{TXID: uint64(pos.TXID)})
}

func (s *Server) handleList(w http.ResponseWriter, _ *http.Request) {
	dbs := s.store.DBs()
	resp := ListResponse{Databases: make([]DatabaseSummary, 0, len(dbs))}
	for _, db := range dbs {
		summary := DatabaseSummary{Path: db.Path(), Status: "stopped"}
		if db.IsOpen() {
			summary.Status = "open"
			if db.Replica != nil && db.Replica.MonitorEnabled {
				summary.Status = "replicating"
			}
		}
		if t := db.LastSuccessfulSyncAt(); !t.IsZero() {
			summary.LastSyncAt = &t
		}
		resp.Databases = append(resp.Databases, summary)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	startedAt := s.startedAt
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, InfoResponse{
		Version:       s.Version,
		PID:           os.Getpid(),
		UptimeSeconds: int64(time.Since(startedAt).Seconds()),
		StartedAt:     startedAt,
		DatabaseCount: len(s.store.DBs()),
	})
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req RegisterDatabaseRequest
	path, ok := s.readRequest(w, r, &req, &req.Path)
	if !ok {
		return
	}
	if req.ReplicaURL == "" {
		writeJSONError(w, http.StatusBadRequest, "replica_url required", nil)
		return
	}
	if !filepath.IsAbs(path) {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("path must be absolute: %q", path), nil)
		return
	}
	if s.store.FindDB(path) != nil {
		writeJSON(w, http.StatusOK, RegisterDatabaseResponse{Status: "already_exists", Path: path})
		return
	}
	client, err := NewReplicaClientFromURL(req.ReplicaURL)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("invalid replica url: %v", err), nil)
		return
	}
	db := NewDB(path)
	db.Replica = NewReplicaWithClient(db, client)
	if err := client.Init(r.Context()); err != nil {
		writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("failed to register database: initialize replica client: %v", err), nil)
		return
	}
	if err := s.store.RegisterDB(db); err != nil {
		writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("failed to register database: %v", err), nil)
		return
	}
	s.logger.Info("database registered", "path", path, "replica", client.Type())
	writeJSON(w, http.StatusOK, RegisterDatabaseResponse{Status: "registered", Path: path})
}

func (s *Server) handleUnregister(w http.ResponseWriter, r *http.Request) {
	var req UnregisterDatabaseRequest
	path, ok := s.readRequest(w, r, &req, &req.Path)
	if !ok {
		return
	}
	db := s.store.FindDB(path)
	if db == nil {
		writeJSON(w, http.StatusOK, UnregisterDatabaseResponse{Status: "not_registered", Path: path})
		return
	}
	txid := currentTXID(db)
	if !s.changeDB(w, r, req.Timeout, path, s.store.UnregisterDB, "failed to unregister database: ", "database unregistered") {
		return
	}
	writeJSON(w, http.StatusOK, UnregisterDatabaseResponse{Status: "unregistered", Path: path, TXID: txid})
}

func (s *Server) handleSyncStatus(w http.ResponseWriter, r *http.Request) {
	dbs := s.store.DBs()
	if p := r.URL.Query().Get("path"); p != "" {
		path, ok := s.resolvePath(w, p)
		if !ok {
			return
		}
		db := s.store.FindDB(path)
		if db == nil {
			writeJSONError(w, http.StatusNotFound, "database not found", path)
			return
		}
		dbs = []*DB{db}
	}
	resp := SyncDiagnosticsResponse{Databases: make([]SyncDiagnostic, 0, len(dbs))}
	for _, db := range dbs {
		resp.Databases = append(resp.Databases, db.SyncDiagnostic())
	}
	writeJSON(w, http.StatusOK, resp)
}

// recordFor streams a recording (a CPU profile or an execution trace) for d,
// or until the client goes away.
func recordFor(w http.ResponseWriter, r *http.Request, d time.Duration, what string, start func(io.Writer) error, stop func()) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := start(w); err != nil {
		writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("start %s: %v", what, err), nil)
		return
	}
	sleepOrDone(r.Context(), d)
	stop()
}

// handlePprof serves runtime profiles as net/http/pprof does, without
// importing it: that package registers its handlers on http.DefaultServeMux,
// which a library must not do to the programs that import it.
func handlePprof(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	seconds, _ := strconv.Atoi(r.URL.Query().Get("seconds"))
	if seconds <= 0 {
		seconds = 30
	}
	switch name {
	case "":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, p := range pprof.Profiles() {
			fmt.Fprintf(w, "%s %d\n", p.Name(), p.Count())
		}
		fmt.Fprintln(w, "profile\ntrace\ncmdline")
	case "cmdline":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, strings.Join(os.Args, "\x00"))
	case "profile":
		recordFor(w, r, time.Duration(seconds)*time.Second, "cpu profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
	case "trace":
		recordFor(w, r, time.Duration(seconds)*time.Second, "trace", trace.Start, trace.Stop)
	default:
		p := pprof.Lookup(name)
		if p == nil {
			writeJSONError(w, http.StatusNotFound, fmt.Sprintf("unknown profile %q", name), nil)
			return
		}
		debug, _ := strconv.Atoi(r.URL.Query().Get("debug"))
		if debug > 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		_ = p.WriteTo(w, debug)
	}
}

func sleepOrDone(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, message string, details any) {
	writeJSON(w, status, ErrorResponse{Error: message, Details: details})
}

// StartRequest is the body of POST /start.
type StartRequest struct {
	Path    string `json:"path"`
	Timeout int    `json:"timeout,omitempty"` // seconds
}

// StartResponse answers POST /start: status "started" or "already_running".
type StartResponse struct {
	Status string `json:"status"`
	Path   string `json:"path"`
	TXID   uint64 `json:"txid,omitempty"`
}

// StopRequest is the body of POST /stop.
type StopRequest struct {
	Path    string `json:"path"`
	Timeout int    `json:"timeout,omitempty"` // seconds, default 30
}

// StopResponse answers POST /stop: status "stopped" or "already_stopped".
type StopResponse struct {
	Status string `json:"status"`
	Path   string `json:"path"`
	TXID   uint64 `json:"txid,omitempty"`
}

// SyncRequest is the body of POST /sync. With Wait the request returns
// after the replica has received the sync.
type SyncRequest struct {
	Path    string `json:"path"`
	Wait    bool   `json:"wait,omitempty"`
	Timeout int    `json:"timeout,omitempty"` // seconds, default 30
}

// SyncResponse answers POST /sync: status "synced_local", "synced" (with
// Wait) or "no_change".
type SyncResponse struct {
	Status         string `json:"status"`
	Path           string `json:"path"`
	TXID           uint64 `json:"txid"`
	ReplicatedTXID uint64 `json:"replicated_txid"`
}

// SyncDiagnosticsResponse answers GET /debug/sync-status.
type SyncDiagnosticsResponse struct {
	Databases []SyncDiagnostic `json:"databases"`
}

// TXIDResponse answers GET /txid.
type TXIDResponse struct {
	TXID uint64 `json:"txid"`
}

// ListResponse answers GET /list.
type ListResponse struct {
	Databases []DatabaseSummary `json:"databases"`
}

// DatabaseSummary is one database of GET /list. Status is "replicating",
// "open" (no background replication) or "stopped".
type DatabaseSummary struct {
	Path   string `json:"path"`
	Status string `json:"status"`

	// LastSyncAt is when the replica last held everything the database had.
	LastSyncAt *time.Time `json:"last_sync_at,omitempty"`
}

// InfoResponse answers GET /info.
type InfoResponse struct {
	Version       string    `json:"version"`
	PID           int       `json:"pid"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	StartedAt     time.Time `json:"started_at"`
	DatabaseCount int       `json:"database_count"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error   string `json:"error"`
	Details any    `json:"details,omitempty"`
}

// RegisterDatabaseRequest is the body of POST /register.
type RegisterDatabaseRequest struct {
	Path       string `json:"path"`
	ReplicaURL string `json:"replica_url"`
}

// RegisterDatabaseResponse answers POST /register: status "registered" or
// "already_exists".
type RegisterDatabaseResponse struct {
	Status string `json:"status"`
	Path   string `json:"path"`
}

// UnregisterDatabaseRequest is the body of POST /unregister.
type UnregisterDatabaseRequest struct {
	Path    string `json:"path"`
	Timeout int    `json:"timeout,omitempty"` // seconds, default 30
}

// UnregisterDatabaseResponse answers POST /unregister: status
// "unregistered" or "not_registered".
type UnregisterDatabaseResponse struct {
	Status string `json:"status"`
	Path   string `json:"path"`
	TXID   uint64 `json:"txid,omitempty"`
}
