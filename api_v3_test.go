// api_v3_test.go pins the v0.3.x names and signatures of SPEC section 15.

package litestream_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// The v0.3.x names of SPEC section 15, with upstream's signatures. This
// test fails to compile if a name or signature drifts.
func TestAPI_SignaturesV3(t *testing.T) {
	var (
		_ string = litestream.GenerationsDirV3
		_ string = litestream.SnapshotsDirV3
		_ string = litestream.WALDirV3

		_ func(string) string                                = litestream.GenerationsPathV3
		_ func(string, string) string                        = litestream.GenerationPathV3
		_ func(string, string) string                        = litestream.SnapshotsPathV3
		_ func(string, string) string                        = litestream.WALPathV3
		_ func(string, string, int) string                   = litestream.SnapshotPathV3
		_ func(string, string, int, int64) string            = litestream.WALSegmentPathV3
		_ func(int) string                                   = litestream.FormatSnapshotFilenameV3
		_ func(int, int64) string                            = litestream.FormatWALSegmentFilenameV3
		_ func(string) (int, error)                          = litestream.ParseSnapshotFilenameV3
		_ func(string) (int, int64, error)                   = litestream.ParseWALSegmentFilenameV3
		_ func(string) bool                                  = litestream.IsGenerationIDV3
		_ func(litestream.PosV3) bool                        = litestream.PosV3.IsZero
		_ func(litestream.PosV3) string                      = litestream.PosV3.String
		_ func(litestream.SnapshotInfoV3) litestream.PosV3   = litestream.SnapshotInfoV3.Pos
		_ func(litestream.WALSegmentInfoV3) litestream.PosV3 = litestream.WALSegmentInfoV3.Pos

		_ func(*litestream.Replica, context.Context, litestream.RestoreOptions) error                          = (*litestream.Replica).RestoreV3
		_ func(*litestream.Replica, context.Context, litestream.ReplicaClientV3) (time.Time, time.Time, error) = (*litestream.Replica).TimeBoundsV3

		_ func(*file.ReplicaClient, context.Context) ([]string, error)                              = (*file.ReplicaClient).GenerationsV3
		_ func(*file.ReplicaClient, context.Context, string) ([]litestream.SnapshotInfoV3, error)   = (*file.ReplicaClient).SnapshotsV3
		_ func(*file.ReplicaClient, context.Context, string) ([]litestream.WALSegmentInfoV3, error) = (*file.ReplicaClient).WALSegmentsV3
		_ func(*file.ReplicaClient, context.Context, string, int) (io.ReadCloser, error)            = (*file.ReplicaClient).OpenSnapshotV3
		_ func(*file.ReplicaClient, context.Context, string, int, int64) (io.ReadCloser, error)     = (*file.ReplicaClient).OpenWALSegmentV3

		// s3, gs, abs and sftp assert ReplicaClientV3 in their own packages:
		// importing them here would register their URL schemes, which
		// TestNewReplicaClientFromURL_ErrUnregistered needs absent.
		_ litestream.ReplicaClientV3 = (*file.ReplicaClient)(nil)
	)
	pos := litestream.PosV3{Generation: "0123456789abcdef", Index: 1, Offset: 32}
	_ = litestream.SnapshotInfoV3{Generation: pos.Generation, Index: pos.Index, Size: 1, CreatedAt: time.Time{}}
	_ = litestream.WALSegmentInfoV3{Generation: pos.Generation, Index: pos.Index, Offset: pos.Offset, Size: 1, CreatedAt: time.Time{}}
}

// TestV3Names checks the v0.3.x file names and paths against the layout
// v0.3.x wrote.
func TestV3Names(t *testing.T) {
	const gen = "0123456789abcdef"
	for _, tt := range []struct{ got, want string }{
		{litestream.SnapshotPathV3("db", gen, 10), "db/generations/0123456789abcdef/snapshots/0000000a.snapshot.lz4"},
		{litestream.WALSegmentPathV3("", gen, 10, 4152), "generations/0123456789abcdef/wal/0000000a_00001038.wal.lz4"},
		{litestream.GenerationPathV3("/r", gen), "/r/generations/0123456789abcdef"},
		{litestream.PosV3{Generation: gen, Index: 2, Offset: 32}.String(), "0123456789abcdef/00000002:0000000000000020"},
		{litestream.PosV3{}.String(), ""},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if i, off, err := litestream.ParseWALSegmentFilenameV3("0000000a_00001038.wal.lz4"); err != nil || i != 10 || off != 4152 {
		t.Errorf("ParseWALSegmentFilenameV3 = %d, %d, %v", i, off, err)
	}
	if i, err := litestream.ParseSnapshotFilenameV3("0000000a.snapshot.lz4"); err != nil || i != 10 {
		t.Errorf("ParseSnapshotFilenameV3 = %d, %v", i, err)
	}
	for _, bad := range []string{"0000000A.snapshot.lz4", "a.snapshot.lz4", "0000000a.snapshot", "0000000a_1.wal.lz4"} {
		_, err1 := litestream.ParseSnapshotFilenameV3(bad)
		_, _, err2 := litestream.ParseWALSegmentFilenameV3(bad)
		if err1 == nil || err2 == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if !litestream.IsGenerationIDV3(gen) || litestream.IsGenerationIDV3("0123456789ABCDEF") || litestream.IsGenerationIDV3("0123") {
		t.Error("IsGenerationIDV3 misjudges")
	}
}
