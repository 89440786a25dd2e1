// api_vfs_test.go: the VFS names of SPEC section 15 (upstream's where they
// fit) and ours; this fails to compile if a name or signature drifts.
package litestream_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

func TestAPI_VFS(t *testing.T) {
	var (
		_ time.Duration = litestream.DefaultPollInterval
		_ int           = litestream.DefaultCacheSize
		_ int           = litestream.DefaultPageSize
		_ error         = litestream.ErrConflict

		_ func(litestream.ReplicaClient, *slog.Logger) *litestream.VFS                        = litestream.NewVFS
		_ func(litestream.ReplicaClient, string, *slog.Logger) *litestream.VFSFile            = litestream.NewVFSFile
		_ func(litestream.ReplicaClient, string, ltx.TXID, *slog.Logger) *litestream.Hydrator = litestream.NewHydrator
		_ func(*litestream.VFS) error                                                         = (*litestream.VFS).Register
		_ func(*litestream.VFS) string                                                        = (*litestream.VFS).Name
		_ func(*litestream.VFS, string) string                                                = (*litestream.VFS).DSN
		_ func(*litestream.VFS) error                                                         = (*litestream.VFS).LastError
		_ func(*litestream.VFS) *litestream.Hydrator                                          = (*litestream.VFS).Hydrator
		_ func(*litestream.VFS) error                                                         = (*litestream.VFS).Close
		_ fs.StatFS                                                                           = (*litestream.VFS)(nil)
		_ func(*litestream.VFSFile) error                                                     = (*litestream.VFSFile).Open
		_ func(*litestream.VFSFile) ltx.TXID                                                  = (*litestream.VFSFile).TXID
		_ interface {
			fs.File
			io.Seeker
			io.ReaderAt
		} = (*litestream.VFSFile)(nil)
		_ func(*litestream.Hydrator, context.Context) = (*litestream.Hydrator).Start
		_ func(*litestream.Hydrator) <-chan struct{}  = (*litestream.Hydrator).Done
		_ func(*litestream.Hydrator) error            = (*litestream.Hydrator).Err
		_ func(*litestream.Hydrator) ltx.TXID         = (*litestream.Hydrator).TXID
		_ func(*litestream.Hydrator) error            = (*litestream.Hydrator).Close
	)
	v := litestream.NewVFS(nil, nil)
	_ = []any{v.PollInterval, v.CacheSize, v.ReadAheadSize, v.HydrationEnabled, v.HydrationPath}
	if v.PollInterval != litestream.DefaultPollInterval || v.CacheSize != litestream.DefaultCacheSize {
		t.Fatalf("NewVFS defaults: poll %s cache %d", v.PollInterval, v.CacheSize)
	}
}
