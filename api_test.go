// Tests that the exported API keeps upstream's signatures.
package litestream_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"
)

// The exported API of SPEC section 14, with upstream's signatures. This
// test fails to compile if a name or signature drifts.
func TestAPI_Signatures(t *testing.T) {
	_ = []any{
		litestream.MetaDirSuffix, litestream.SnapshotLevel,
		litestream.CheckpointModePassive, litestream.CheckpointModeFull, litestream.CheckpointModeRestart, litestream.CheckpointModeTruncate,
		litestream.WALHeaderChecksumOffset, litestream.WALFrameHeaderChecksumOffset, litestream.WALHeaderSize, litestream.WALFrameHeaderSize,
		litestream.DefaultMinCheckpointPageN, litestream.DefaultTruncatePageN, litestream.DefaultMaxSyncWALBytes, litestream.DefaultMaxSyncLTXFiles,
		litestream.DefaultRestoreParallelism, litestream.DefaultEstimatedPageIndexSize,
		litestream.LogKeySystem, litestream.LogKeySubsystem, litestream.LogKeyDB, litestream.LogSystemStore,
		litestream.LogSubsystemCompactor, litestream.LogSubsystemWALReader,
		litestream.LogWriter, litestream.LogFlags, litestream.DefaultCompactionLevels,
	}
	var durations = []time.Duration{
		litestream.DefaultMonitorInterval, litestream.DefaultCheckpointInterval, litestream.DefaultBusyTimeout,
		litestream.DefaultShutdownSyncTimeout, litestream.DefaultShutdownSyncInterval, litestream.DefaultSyncBackoffMax,
		litestream.SyncErrorLogInterval, litestream.DefaultSyncInterval, litestream.DefaultSnapshotInterval,
		litestream.DefaultSnapshotRetention, litestream.DefaultRetention, litestream.DefaultRetentionCheckInterval,
		litestream.DefaultL0Retention, litestream.DefaultL0RetentionCheckInterval, litestream.DefaultHeartbeatCheckInterval,
		litestream.DefaultDBInitTimeout, litestream.DefaultFollowInterval,
	}
	var modes = []litestream.IntegrityCheckMode{litestream.IntegrityCheckNone, litestream.IntegrityCheckQuick, litestream.IntegrityCheckFull}
	var errs = []error{
		litestream.ErrNoSnapshots, litestream.ErrChecksumMismatch, litestream.ErrLTXCorrupted, litestream.ErrLTXMissing,
		litestream.ErrDiskFull, litestream.ErrNoCompaction, litestream.ErrCompactionTooEarly, litestream.ErrTxNotAvailable,
		litestream.ErrDBNotReady, litestream.ErrShutdownInterrupted, litestream.ErrDatabaseNotFound, litestream.ErrDatabaseNotOpen,
		litestream.ErrStopIter,
	}
	if len(durations) != 17 || len(modes) != 3 || len(errs) != 13 {
		t.Fatal("lists changed length")
	}

	// Functions.
	var (
		_ func(binary.ByteOrder, uint32, uint32, []byte) (uint32, uint32)                                                        = litestream.Checksum
		_ func(binary.ByteOrder, uint32, uint32, []byte) (uint32, uint32)                                                        = litestream.WALChecksum
		_ func(string) string                                                                                                    = litestream.LTXDir
		_ func(string, int) string                                                                                               = litestream.LTXLevelDir
		_ func(string, int, ltx.TXID, ltx.TXID) string                                                                           = litestream.LTXFilePath
		_ func(context.Context, litestream.ReplicaClient, int, bool, func(*ltx.FileInfo) (bool, error)) ([]*ltx.FileInfo, error) = litestream.FindLTXFiles
		_ func(context.Context, litestream.ReplicaClient, *ltx.FileInfo) (ltx.Header, error)                                     = litestream.FetchLTXHeader
		_ func(context.Context, litestream.ReplicaClient, *ltx.FileInfo) (map[uint32]ltx.PageIndexElem, error)                   = litestream.FetchPageIndex
		_ func(context.Context, litestream.ReplicaClient, int, ltx.TXID, ltx.TXID, int64, int64) (ltx.PageHeader, []byte, error) = litestream.FetchPage
		_ func(context.Context, litestream.ReplicaClient, ltx.TXID, time.Time, *slog.Logger) ([]*ltx.FileInfo, error)            = litestream.CalcRestorePlan
		_ func() litestream.RestoreOptions                                                                                       = litestream.NewRestoreOptions
		_ func(string) string                                                                                                    = litestream.TXIDPath
		_ func(string, ltx.TXID) error                                                                                           = litestream.WriteTXIDFile
		_ func(string) (ltx.TXID, error)                                                                                         = litestream.ReadTXIDFile
		_ func(string, litestream.ReplicaClientFactory)                                                                          = litestream.RegisterReplicaClientFactory
		_ func(string) (litestream.ReplicaClient, error)                                                                         = litestream.NewReplicaClientFromURL
		_ func(string) string                                                                                                    = litestream.ReplicaTypeFromURL
		_ func(string) (string, string, string, error)                                                                           = litestream.ParseReplicaURL
		_ func(string) (string, string, string, url.Values, *url.Userinfo, error)                                                = litestream.ParseReplicaURLWithQuery
		_ func(string) string                                                                                                    = litestream.CleanReplicaURLPath
		_ func(string) bool                                                                                                      = litestream.IsURL
		_ func(url.Values, ...string) (bool, bool)                                                                               = litestream.BoolQueryValue
		_ func(url.Values, ...string) (int64, bool, error)                                                                       = litestream.IntQueryValue
		_ func(string, string, int, uint64, uint64, error) *litestream.LTXError                                                  = litestream.NewLTXError
		_ func(string) *litestream.DB                                                                                            = litestream.NewDB
		_ func(*litestream.DB) *litestream.Replica                                                                               = litestream.NewReplica
		_ func(*litestream.DB, litestream.ReplicaClient) *litestream.Replica                                                     = litestream.NewReplicaWithClient
		_ func([]*litestream.DB, litestream.CompactionLevels) *litestream.Store                                                  = litestream.NewStore
		_ func(litestream.ReplicaClient, *slog.Logger) *litestream.Compactor                                                     = litestream.NewCompactor
		_ func(io.ReaderAt, *slog.Logger) (*litestream.WALReader, error)                                                         = litestream.NewWALReader
		_ func(context.Context, io.ReaderAt, int64, uint32, uint32, *slog.Logger) (*litestream.WALReader, error)                 = litestream.NewWALReaderWithOffset
	)

	// Methods.
	var (
		_ func(*litestream.CompactionLevel, time.Time) time.Time                      = (*litestream.CompactionLevel).PrevCompactionAt
		_ func(*litestream.CompactionLevel, time.Time) time.Time                      = (*litestream.CompactionLevel).NextCompactionAt
		_ func(litestream.CompactionLevels, int) (*litestream.CompactionLevel, error) = litestream.CompactionLevels.Level
		_ func(litestream.CompactionLevels) int                                       = litestream.CompactionLevels.MaxLevel
		_ func(litestream.CompactionLevels) error                                     = litestream.CompactionLevels.Validate
		_ func(litestream.CompactionLevels, int) bool                                 = litestream.CompactionLevels.IsValidLevel
		_ func(litestream.CompactionLevels, int) int                                  = litestream.CompactionLevels.PrevLevel
		_ func(litestream.CompactionLevels, int) int                                  = litestream.CompactionLevels.NextLevel

		_ func(*litestream.DB) error                                            = (*litestream.DB).Open
		_ func(*litestream.DB, context.Context) error                           = (*litestream.DB).Close
		_ func(*litestream.DB) bool                                             = (*litestream.DB).IsOpen
		_ func(*litestream.DB) string                                           = (*litestream.DB).Path
		_ func(*litestream.DB) string                                           = (*litestream.DB).WALPath
		_ func(*litestream.DB) string                                           = (*litestream.DB).MetaPath
		_ func(*litestream.DB, string)                                          = (*litestream.DB).SetMetaPath
		_ func(*litestream.DB) string                                           = (*litestream.DB).LTXDir
		_ func(*litestream.DB, int) string                                      = (*litestream.DB).LTXLevelDir
		_ func(*litestream.DB, int, ltx.TXID, ltx.TXID) string                  = (*litestream.DB).LTXPath
		_ func(*litestream.DB) (ltx.TXID, ltx.TXID, error)                      = (*litestream.DB).MaxLTX
		_ func(*litestream.DB) (ltx.Pos, error)                                 = (*litestream.DB).Pos
		_ func(*litestream.DB) int                                              = (*litestream.DB).PageSize
		_ func(*litestream.DB) os.FileInfo                                      = (*litestream.DB).FileInfo
		_ func(*litestream.DB) os.FileInfo                                      = (*litestream.DB).DirInfo
		_ func(*litestream.DB) *sql.DB                                          = (*litestream.DB).SQLDB
		_ func(*litestream.DB) <-chan struct{}                                  = (*litestream.DB).Notify
		_ func(*litestream.DB, *slog.Logger)                                    = (*litestream.DB).SetLogger
		_ func(*litestream.DB, context.Context) error                           = (*litestream.DB).Sync
		_ func(*litestream.DB, context.Context) error                           = (*litestream.DB).SyncAndWait
		_ func(*litestream.DB, context.Context) (litestream.SyncStatus, error)  = (*litestream.DB).SyncStatus
		_ func(*litestream.DB) litestream.SyncDiagnostic                        = (*litestream.DB).SyncDiagnostic
		_ func(*litestream.DB, context.Context, string) error                   = (*litestream.DB).Checkpoint
		_ func(*litestream.DB, context.Context) (uint64, ltx.Pos, error)        = (*litestream.DB).CRC64
		_ func(*litestream.DB, context.Context) (ltx.Pos, io.ReadCloser, error) = (*litestream.DB).SnapshotReader
		_ func(*litestream.DB, context.Context) (*ltx.FileInfo, error)          = (*litestream.DB).Snapshot
		_ func(*litestream.DB, context.Context, int) (*ltx.FileInfo, error)     = (*litestream.DB).Compact
		_ func(*litestream.DB, context.Context, int) (ltx.FileInfo, error)      = (*litestream.DB).MaxLTXFileInfo
		_ func(*litestream.DB, context.Context, time.Time) (ltx.TXID, error)    = (*litestream.DB).EnforceSnapshotRetention
		_ func(*litestream.DB, context.Context) error                           = (*litestream.DB).EnforceL0RetentionByTime
		_ func(*litestream.DB, context.Context, int, ltx.TXID) error            = (*litestream.DB).EnforceRetentionByTXID
		_ func(*litestream.DB, context.Context) error                           = (*litestream.DB).EnsureExists
		_ func(*litestream.DB, context.Context) error                           = (*litestream.DB).ResetLocalState
		_ func(*litestream.DB)                                                  = (*litestream.DB).RecordSuccessfulSync
		_ func(*litestream.DB) time.Time                                        = (*litestream.DB).LastSuccessfulSyncAt

		_ func(*litestream.Replica) *litestream.DB                                                 = (*litestream.Replica).DB
		_ func(*litestream.Replica) *slog.Logger                                                   = (*litestream.Replica).Logger
		_ func(*litestream.Replica, context.Context) error                                         = (*litestream.Replica).Start
		_ func(*litestream.Replica, bool) error                                                    = (*litestream.Replica).Stop
		_ func(*litestream.Replica, context.Context) error                                         = (*litestream.Replica).Sync
		_ func(*litestream.Replica) ltx.Pos                                                        = (*litestream.Replica).Pos
		_ func(*litestream.Replica, ltx.Pos)                                                       = (*litestream.Replica).SetPos
		_ func(*litestream.Replica, context.Context, int) (ltx.FileInfo, error)                    = (*litestream.Replica).MaxLTXFileInfo
		_ func(*litestream.Replica, context.Context) (time.Time, error)                            = (*litestream.Replica).CreatedAt
		_ func(*litestream.Replica, context.Context) (time.Time, time.Time, error)                 = (*litestream.Replica).TimeBounds
		_ func(*litestream.Replica, context.Context, litestream.RestoreOptions) (time.Time, error) = (*litestream.Replica).CalcRestoreTarget
		_ func(*litestream.Replica, context.Context, litestream.RestoreOptions) error              = (*litestream.Replica).Restore
		_ func(*litestream.Replica, context.Context, int) ([]litestream.ValidationError, error)    = (*litestream.Replica).ValidateLevel
		_ func(*litestream.Replica, context.Context) error                                         = (*litestream.Replica).EnforceRetention

		_ func(*litestream.Store, context.Context) error                                                               = (*litestream.Store).Open
		_ func(*litestream.Store, context.Context) error                                                               = (*litestream.Store).Close
		_ func(*litestream.Store) []*litestream.DB                                                                     = (*litestream.Store).DBs
		_ func(*litestream.Store, string) *litestream.DB                                                               = (*litestream.Store).FindDB
		_ func(*litestream.Store, *litestream.DB) error                                                                = (*litestream.Store).RegisterDB
		_ func(*litestream.Store, context.Context, string) error                                                       = (*litestream.Store).UnregisterDB
		_ func(*litestream.Store, context.Context, string) error                                                       = (*litestream.Store).EnableDB
		_ func(*litestream.Store, context.Context, string) error                                                       = (*litestream.Store).DisableDB
		_ func(*litestream.Store, context.Context, string, bool) (litestream.SyncDBResult, error)                      = (*litestream.Store).SyncDB
		_ func(*litestream.Store) *litestream.CompactionLevel                                                          = (*litestream.Store).SnapshotLevel
		_ func(*litestream.Store, context.Context, *litestream.DB, *litestream.CompactionLevel) (*ltx.FileInfo, error) = (*litestream.Store).CompactDB
		_ func(*litestream.Store, context.Context, *litestream.DB) error                                               = (*litestream.Store).EnforceSnapshotRetention
		_ func(*litestream.Store, context.Context) (*litestream.ValidationResult, error)                               = (*litestream.Store).Validate
		_ func(*litestream.Store, time.Duration)                                                                       = (*litestream.Store).SetL0Retention
		_ func(*litestream.Store, <-chan struct{})                                                                     = (*litestream.Store).SetDone
		_ func(*litestream.Store, time.Duration)                                                                       = (*litestream.Store).SetShutdownSyncTimeout
		_ func(*litestream.Store, time.Duration)                                                                       = (*litestream.Store).SetShutdownSyncInterval
		_ func(*litestream.Store, bool)                                                                                = (*litestream.Store).SetVerifyCompaction
		_ func(*litestream.Store, bool)                                                                                = (*litestream.Store).SetRetentionEnabled

		_ func(*litestream.Compactor, context.Context, int) (ltx.FileInfo, error)       = (*litestream.Compactor).MaxLTXFileInfo
		_ func(*litestream.Compactor, context.Context, int) (*ltx.FileInfo, error)      = (*litestream.Compactor).Compact
		_ func(*litestream.Compactor, context.Context, int) error                       = (*litestream.Compactor).VerifyLevelConsistency
		_ func(*litestream.Compactor, context.Context, time.Duration) (ltx.TXID, error) = (*litestream.Compactor).EnforceSnapshotRetention
		_ func(*litestream.Compactor, context.Context, int, ltx.TXID) error             = (*litestream.Compactor).EnforceRetentionByTXID
		_ func(*litestream.Compactor, context.Context, time.Duration) error             = (*litestream.Compactor).EnforceL0Retention

		_ func(*litestream.WALReader) uint32                                                      = (*litestream.WALReader).PageSize
		_ func(*litestream.WALReader) int64                                                       = (*litestream.WALReader).Offset
		_ func(*litestream.WALReader, context.Context, []byte) (uint32, uint32, error)            = (*litestream.WALReader).ReadFrame
		_ func(*litestream.WALReader, context.Context) (map[uint32]int64, int64, uint32, error)   = (*litestream.WALReader).PageMap
		_ func(*litestream.WALReader, context.Context, [2]uint32) (map[[2]uint32]struct{}, error) = (*litestream.WALReader).FrameSaltsUntil

		_ func(*litestream.LTXError) string               = (*litestream.LTXError).Error
		_ func(*litestream.LTXError) error                = (*litestream.LTXError).Unwrap
		_ func(*litestream.LTXError) bool                 = (*litestream.LTXError).IsAutoRecoverable
		_ func(*litestream.DBNotReadyError) string        = (*litestream.DBNotReadyError).Error
		_ func(*litestream.DBNotReadyError, error) bool   = (*litestream.DBNotReadyError).Is
		_ func(*litestream.PrevFrameMismatchError) string = (*litestream.PrevFrameMismatchError).Error
		_ func(*litestream.PrevFrameMismatchError) error  = (*litestream.PrevFrameMismatchError).Unwrap
	)

	// Struct fields.
	db := litestream.DB{Done: nil, MinCheckpointPageN: 1, TruncatePageN: 1, CheckpointInterval: 1, MonitorInterval: 1,
		MaxSyncWALBytes: 1, BusyTimeout: 1, L0Retention: 1, VerifyCompaction: true, RetentionEnabled: true,
		Replica: nil, ShutdownSyncTimeout: 1, ShutdownSyncInterval: 1, Logger: nil}
	r := litestream.Replica{Client: nil, SyncInterval: 1, MaxSyncLTXFiles: 1, MonitorEnabled: true, AutoRecoverEnabled: true}
	s := litestream.Store{SnapshotInterval: 1, SnapshotRetention: 1, L0Retention: 1, L0RetentionCheckInterval: 1,
		CompactionMonitorEnabled: true, VerifyCompaction: true, RetentionEnabled: true, ShutdownSyncTimeout: 1,
		ShutdownSyncInterval: 1, HeartbeatCheckInterval: 1, Heartbeat: (*litestream.HeartbeatClient)(nil), ValidationInterval: 1, Logger: nil}
	c := litestream.Compactor{VerifyCompaction: true, RetentionEnabled: true, CompactionVerifyErrorCounter: prometheus.Counter(nil),
		LocalFileOpener:  func(int, ltx.TXID, ltx.TXID) (io.ReadCloser, error) { return nil, nil },
		LocalFileDeleter: func(int, ltx.TXID, ltx.TXID) error { return nil },
		CacheGetter:      func(int) (*ltx.FileInfo, bool) { return nil, false },
		CacheSetter:      func(int, *ltx.FileInfo) {}}
	opt := litestream.RestoreOptions{OutputPath: "", TXID: 0, Timestamp: time.Time{}, Parallelism: 1, Follow: true, FollowInterval: 1, IntegrityCheck: litestream.IntegrityCheckFull}
	st := litestream.SyncStatus{LocalTXID: 1, RemoteTXID: 1, InSync: true}
	res := litestream.SyncDBResult{TXID: 1, ReplicatedTXID: 1, Changed: true}
	ve := litestream.ValidationError{Level: 1, Type: "gap", Message: "", PrevFile: nil, CurrFile: nil}
	vr := litestream.ValidationResult{Valid: true, Errors: []litestream.ValidationError{ve}}
	le := litestream.LTXError{Op: "", Path: "", Level: 0, MinTXID: 0, MaxTXID: 0, Err: nil, Hint: ""}
	ne := litestream.DBNotReadyError{Reason: ""}
	pe := litestream.PrevFrameMismatchError{Err: nil}
	cl := litestream.CompactionLevel{Level: 1, Interval: time.Second}
	d := litestream.SyncDiagnostic{Path: "", Active: true, Operation: "", Phase: "", StartedAt: nil, UpdatedAt: nil,
		ElapsedSeconds: 0, TXID: 0, WALSize: 0, LastSyncedWALOffset: 0, Snapshotting: true, CheckpointMode: "",
		Reason: "", Error: "", ExecutorWaiterCount: 0, ExecutorWaitStarted: nil, ExecutorWaitSeconds: 0}
	_ = []any{&db, &r, &s, &c, opt, st, res, vr, le, ne, pe, cl, d}

	// The file package.
	var (
		_                                                                                           = file.ReplicaClientType
		_ func(string) *file.ReplicaClient                                                          = file.NewReplicaClient
		_ func(string, string, string, url.Values, *url.Userinfo) (litestream.ReplicaClient, error) = file.NewReplicaClientFromURL
		_ litestream.ReplicaClient                                                                  = (*file.ReplicaClient)(nil)
		_ func(*file.ReplicaClient) string                                                          = (*file.ReplicaClient).Path
		_ func(*file.ReplicaClient, int) string                                                     = (*file.ReplicaClient).LTXLevelDir
		_ func(*file.ReplicaClient, int, ltx.TXID, ltx.TXID) string                                 = (*file.ReplicaClient).LTXFilePath
	)
	_ = file.ReplicaClient{Replica: nil}
}

// Section 15 names: heartbeat, control server and endpoint helpers, with
// upstream's signatures. (VFS, leasing and v0.3 names are checked in their
// own files.)
func TestAPI_Section15_HeartbeatServerEndpoints(t *testing.T) {
	var durations = []time.Duration{
		litestream.DefaultHeartbeatInterval, litestream.DefaultHeartbeatTimeout,
		litestream.MinHeartbeatInterval, litestream.DefaultHeartbeatCheckInterval,
	}
	if len(durations) != 4 || litestream.LogSystemServer != "server" {
		t.Fatal("constants changed")
	}

	var (
		_ func(string, time.Duration) *litestream.HeartbeatClient  = litestream.NewHeartbeatClient
		_ func(*litestream.HeartbeatClient, context.Context) error = (*litestream.HeartbeatClient).Ping
		_ func(*litestream.HeartbeatClient) bool                   = (*litestream.HeartbeatClient).ShouldPing
		_ func(*litestream.HeartbeatClient)                        = (*litestream.HeartbeatClient).RecordPing
		_ func(*litestream.HeartbeatClient) time.Time              = (*litestream.HeartbeatClient).LastPingAt

		_ func(*litestream.Store) *litestream.Server = litestream.NewServer
		_ func(*litestream.Server) error             = (*litestream.Server).Start
		_ func(*litestream.Server) error             = (*litestream.Server).Close
		_ func() litestream.SocketConfig             = litestream.DefaultSocketConfig

		_ func(string) string         = litestream.RegionFromS3ARN
		_ func(string) bool           = litestream.IsHetznerEndpoint
		_ func(string) bool           = litestream.IsTigrisEndpoint
		_ func(string) bool           = litestream.IsGoogleCloudStorageEndpoint
		_ func(string) bool           = litestream.IsDigitalOceanEndpoint
		_ func(string) bool           = litestream.IsBackblazeEndpoint
		_ func(string) bool           = litestream.IsFilebaseEndpoint
		_ func(string) bool           = litestream.IsScalewayEndpoint
		_ func(string) bool           = litestream.IsCloudflareR2Endpoint
		_ func(string) bool           = litestream.IsSupabaseEndpoint
		_ func(string) bool           = litestream.IsMinIOEndpoint
		_ func(string) bool           = litestream.IsLocalEndpoint
		_ func(string) (string, bool) = litestream.EnsureEndpointScheme
	)

	hb := litestream.HeartbeatClient{URL: "", Interval: 1, Timeout: 1}
	s := litestream.Store{Heartbeat: &hb, HeartbeatCheckInterval: 1}
	srv := litestream.Server{SocketPath: "", SocketPerms: 0o600, PathExpander: func(string) (string, error) { return "", nil }, Version: ""}
	sc := litestream.SocketConfig{Enabled: true, Path: "", Permissions: 0o600}
	now := time.Now()
	_ = []any{&s, &srv, sc,
		litestream.StartRequest{Path: "", Timeout: 1}, litestream.StartResponse{Status: "", Path: ""},
		litestream.StopRequest{Path: "", Timeout: 1}, litestream.StopResponse{Status: "", Path: ""},
		litestream.SyncRequest{Path: "", Wait: true, Timeout: 1},
		litestream.SyncResponse{Status: "", Path: "", TXID: 1, ReplicatedTXID: 1},
		litestream.SyncDiagnosticsResponse{Databases: []litestream.SyncDiagnostic{}},
		litestream.TXIDResponse{TXID: 1},
		litestream.ListResponse{Databases: []litestream.DatabaseSummary{{Path: "", Status: "", LastSyncAt: &now}}},
		litestream.InfoResponse{Version: "", PID: 1, UptimeSeconds: 1, StartedAt: now, DatabaseCount: 1},
		litestream.ErrorResponse{Error: "", Details: nil},
		litestream.RegisterDatabaseRequest{Path: "", ReplicaURL: ""}, litestream.RegisterDatabaseResponse{Status: "", Path: ""},
		litestream.UnregisterDatabaseRequest{Path: "", Timeout: 1}, litestream.UnregisterDatabaseResponse{Status: "", Path: ""},
	}
}
