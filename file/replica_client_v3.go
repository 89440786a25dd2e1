// replica_client_v3.go reads backups written by Litestream v0.3.x from the
// same directory: <path>/generations/<id>/{snapshots,wal}/. CreatedAt is the
// file's mtime, as v0.3.x used.

package file

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
)

var (
	_ litestream.ReplicaClientV3    = (*ReplicaClient)(nil)
	_ litestream.ReplicaClientV3Raw = (*ReplicaClient)(nil)
)

// GenerationsV3 returns the v0.3.x generation names, sorted.
func (c *ReplicaClient) GenerationsV3(ctx context.Context) ([]string, error) {
	entries, err := readDirV3(filepath.Join(c.path, litestream.GenerationsDirV3))
	if err != nil {
		return nil, err
	}
	var gens []string
	for _, e := range entries {
		if e.IsDir() && litestream.IsGenerationIDV3(e.Name()) {
			gens = append(gens, e.Name())
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// SnapshotsV3 returns a generation's snapshots sorted by index.
func (c *ReplicaClient) SnapshotsV3(ctx context.Context, generation string) ([]litestream.SnapshotInfoV3, error) {
	dir := filepath.FromSlash(litestream.SnapshotsPathV3(c.path, generation))
	entries, err := readDirV3(dir)
	if err != nil {
		return nil, err
	}
	var infos []litestream.SnapshotInfoV3
	for _, e := range entries {
		index, err := litestream.ParseSnapshotFilenameV3(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(dir, e.Name()), err)
		}
		infos = append(infos, litestream.SnapshotInfoV3{Generation: generation, Index: index, Size: fi.Size(), CreatedAt: fi.ModTime().UTC()})
	}
	slices.SortFunc(infos, func(a, b litestream.SnapshotInfoV3) int { return cmp.Compare(a.Index, b.Index) })
	return infos, nil
}

// WALSegmentsV3 returns a generation's WAL segments sorted by index, then
// offset.
func (c *ReplicaClient) WALSegmentsV3(ctx context.Context, generation string) ([]litestream.WALSegmentInfoV3, error) {
	dir := filepath.FromSlash(litestream.WALPathV3(c.path, generation))
	entries, err := readDirV3(dir)
	if err != nil {
		return nil, err
	}
	var infos []litestream.WALSegmentInfoV3
	for _, e := range entries {
		index, offset, err := litestream.ParseWALSegmentFilenameV3(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(dir, e.Name()), err)
		}
		infos = append(infos, litestream.WALSegmentInfoV3{Generation: generation, Index: index, Offset: offset, Size: fi.Size(), CreatedAt: fi.ModTime().UTC()})
	}
	slices.SortFunc(infos, func(a, b litestream.WALSegmentInfoV3) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Offset, b.Offset))
	})
	return infos, nil
}

// OpenSnapshotV3 returns a snapshot's decompressed contents.
func (c *ReplicaClient) OpenSnapshotV3(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return openDecodedV3(c.OpenSnapshotV3Raw(ctx, generation, index))
}

// OpenWALSegmentV3 returns a WAL segment's decompressed contents.
func (c *ReplicaClient) OpenWALSegmentV3(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return openDecodedV3(c.OpenWALSegmentV3Raw(ctx, generation, index, offset))
}

// OpenSnapshotV3Raw returns a snapshot file as stored.
func (c *ReplicaClient) OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return os.Open(filepath.FromSlash(litestream.SnapshotPathV3(c.path, generation, index)))
}

// OpenWALSegmentV3Raw returns a WAL segment file as stored.
func (c *ReplicaClient) OpenWALSegmentV3Raw(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return os.Open(filepath.FromSlash(litestream.WALSegmentPathV3(c.path, generation, index, offset)))
}

func openDecodedV3(rc io.ReadCloser, err error) (io.ReadCloser, error) {
	if err != nil {
		return nil, err
	}
	return internal.OpenV3File(rc, nil)
}

// readDirV3 lists dir; a missing directory has no entries.
func readDirV3(dir string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return entries, nil
}
