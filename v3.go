// v3.go holds the names for backups written by Litestream v0.3.x: positions,
// file infos, the generation layout and its file names, and the optional
// ReplicaClientV3 interface through which such backups are read.
//
// A v0.3 replica keeps, under its root:
//
//	generations/<16 hex>/snapshots/<index %08x>.snapshot.lz4
//	generations/<16 hex>/wal/<index %08x>_<offset %08x>.wal.lz4
//
// A snapshot is the whole database file; a WAL segment is a run of bytes of
// the WAL file with that index, starting at that byte offset (the segment at
// offset 0 begins with the WAL header). Every file is one LZ4 frame, and
// when v0.3 was configured with age recipients the LZ4 frame was then
// age-encrypted.

package litestream

import (
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"time"
)

// PosV3 is a position in a v0.3.x backup: a WAL index within a generation
// and a byte offset in that WAL.
type PosV3 struct {
	Generation string // 16 lowercase hex characters
	Index      int    // WAL index
	Offset     int64  // byte offset within the WAL of that index
}

// IsZero reports whether p is the zero position.
func (p PosV3) IsZero() bool { return p == (PosV3{}) }

// String returns "<generation>/<index %08x>:<offset %016x>", or "" for the
// zero position.
func (p PosV3) String() string {
	if p.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s/%08x:%016x", p.Generation, p.Index, p.Offset)
}

// SnapshotInfoV3 describes one v0.3.x snapshot. CreatedAt is the storage's
// modification or creation time of the file, as v0.3.x itself used.
type SnapshotInfoV3 struct {
	Generation string
	Index      int
	Size       int64 // stored (compressed) size in bytes
	CreatedAt  time.Time
}

// Pos returns the snapshot's position: its index at offset zero.
func (info SnapshotInfoV3) Pos() PosV3 {
	return PosV3{Generation: info.Generation, Index: info.Index}
}

// WALSegmentInfoV3 describes one v0.3.x WAL segment. CreatedAt is the
// storage's modification or creation time of the file.
type WALSegmentInfoV3 struct {
	Generation string
	Index      int
	Offset     int64
	Size       int64 // stored (compressed) size in bytes
	CreatedAt  time.Time
}

// Pos returns the segment's starting position.
func (info WALSegmentInfoV3) Pos() PosV3 {
	return PosV3{Generation: info.Generation, Index: info.Index, Offset: info.Offset}
}

// Directory names of the v0.3.x layout.
const (
	GenerationsDirV3 = "generations"
	SnapshotsDirV3   = "snapshots"
	WALDirV3         = "wal"
)

// GenerationsPathV3 returns the directory holding all generations.
func GenerationsPathV3(root string) string { return path.Join(root, GenerationsDirV3) }

// GenerationPathV3 returns the directory of one generation.
func GenerationPathV3(root, generation string) string {
	return path.Join(root, GenerationsDirV3, generation)
}

// SnapshotsPathV3 returns the snapshot directory of a generation.
func SnapshotsPathV3(root, generation string) string {
	return path.Join(GenerationPathV3(root, generation), SnapshotsDirV3)
}

// WALPathV3 returns the WAL segment directory of a generation.
func WALPathV3(root, generation string) string {
	return path.Join(GenerationPathV3(root, generation), WALDirV3)
}

// SnapshotPathV3 returns the path of a snapshot file.
func SnapshotPathV3(root, generation string, index int) string {
	return path.Join(SnapshotsPathV3(root, generation), FormatSnapshotFilenameV3(index))
}

// WALSegmentPathV3 returns the path of a WAL segment file.
func WALSegmentPathV3(root, generation string, index int, offset int64) string {
	return path.Join(WALPathV3(root, generation), FormatWALSegmentFilenameV3(index, offset))
}

// FormatSnapshotFilenameV3 returns "<index %08x>.snapshot.lz4".
func FormatSnapshotFilenameV3(index int) string {
	return fmt.Sprintf("%08x.snapshot.lz4", index)
}

// FormatWALSegmentFilenameV3 returns "<index %08x>_<offset %08x>.wal.lz4".
// Offsets past 32 bits simply take more digits.
func FormatWALSegmentFilenameV3(index int, offset int64) string {
	return fmt.Sprintf("%08x_%08x.wal.lz4", index, offset)
}

var (
	snapshotFilenameV3RE   = regexp.MustCompile(`^([0-9a-f]{8})\.snapshot\.lz4$`)
	walSegmentFilenameV3RE = regexp.MustCompile(`^([0-9a-f]{8})_([0-9a-f]{8,16})\.wal\.lz4$`)
	generationIDV3RE       = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// ParseSnapshotFilenameV3 returns the index in a snapshot file name.
func ParseSnapshotFilenameV3(filename string) (index int, err error) {
	m := snapshotFilenameV3RE.FindStringSubmatch(filename)
	if m == nil {
		return 0, fmt.Errorf("invalid v0.3.x snapshot filename %q: want <index %%08x>.snapshot.lz4", filename)
	}
	i, err := strconv.ParseUint(m[1], 16, 31)
	if err != nil {
		return 0, fmt.Errorf("invalid v0.3.x snapshot filename %q: %w", filename, err)
	}
	return int(i), nil
}

// ParseWALSegmentFilenameV3 returns the index and offset in a WAL segment
// file name.
func ParseWALSegmentFilenameV3(filename string) (index int, offset int64, err error) {
	m := walSegmentFilenameV3RE.FindStringSubmatch(filename)
	if m == nil {
		return 0, 0, fmt.Errorf("invalid v0.3.x wal segment filename %q: want <index %%08x>_<offset %%08x>.wal.lz4", filename)
	}
	i, err := strconv.ParseUint(m[1], 16, 31)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid v0.3.x wal segment filename %q: %w", filename, err)
	}
	off, err := strconv.ParseUint(m[2], 16, 63)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid v0.3.x wal segment filename %q: %w", filename, err)
	}
	return int(i), int64(off), nil
}

// IsGenerationIDV3 reports whether s is a v0.3.x generation name: 16
// lowercase hex characters.
func IsGenerationIDV3(s string) bool { return generationIDV3RE.MatchString(s) }

// ReplicaClientV3 is implemented by replica clients that can read backups
// written by Litestream v0.3.x. Replica.Restore uses it, when the client
// has it, to restore from such a backup when it is newer than the LTX data.
type ReplicaClientV3 interface {
	// GenerationsV3 returns the generation names, sorted ascending; none
	// (and no error) when the replica has no v0.3.x backup.
	GenerationsV3(ctx context.Context) ([]string, error)

	// SnapshotsV3 returns a generation's snapshots sorted by index.
	SnapshotsV3(ctx context.Context, generation string) ([]SnapshotInfoV3, error)

	// WALSegmentsV3 returns a generation's WAL segments sorted by index,
	// then offset.
	WALSegmentsV3(ctx context.Context, generation string) ([]WALSegmentInfoV3, error)

	// OpenSnapshotV3 returns a snapshot's LZ4-decompressed contents.
	OpenSnapshotV3(ctx context.Context, generation string, index int) (io.ReadCloser, error)

	// OpenWALSegmentV3 returns a WAL segment's LZ4-decompressed contents.
	OpenWALSegmentV3(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error)
}

// ReplicaClientV3Raw is implemented by the clients of this module beside
// ReplicaClientV3: it returns a v0.3.x file exactly as stored (an LZ4 frame,
// possibly inside age encryption). RestoreV3 prefers it so that it can
// decrypt backups with RestoreOptions.AgeIdentities before decompressing.
type ReplicaClientV3Raw interface {
	OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error)
	OpenWALSegmentV3Raw(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error)
}
