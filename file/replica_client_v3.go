// replica_client_v3.go reads backups written by Litestream v0.3.x from the
// same directory, <path>/generations/<id>/{snapshots,wal}/: the
// ReplicaClient's v0.3.x methods delegate to v3list, which lists and opens
// local files through v3Store. CreatedAt is the file's mtime, as v0.3.x
// used.

package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/v3list"
)

var (
	_ litestream.ReplicaClientV3    = (*ReplicaClient)(nil)
	_ litestream.ReplicaClientV3Raw = (*ReplicaClient)(nil)
)

// v3 returns the v0.3.x reads of the backup under the client's current root.
func (c *ReplicaClient) v3() v3list.Methods {
	return v3list.NewMethods(ReplicaClientType, c.path, v3Store{})
}

// GenerationsV3 returns the v0.3.x generation names, sorted.
func (c *ReplicaClient) GenerationsV3(ctx context.Context) ([]string, error) {
	return c.v3().GenerationsV3(ctx)
}

// SnapshotsV3 returns a generation's v0.3.x snapshots sorted by index.
func (c *ReplicaClient) SnapshotsV3(ctx context.Context, generation string) ([]litestream.SnapshotInfoV3, error) {
	return c.v3().SnapshotsV3(ctx, generation)
}

// WALSegmentsV3 returns a generation's v0.3.x WAL segments sorted by index,
// then offset.
func (c *ReplicaClient) WALSegmentsV3(ctx context.Context, generation string) ([]litestream.WALSegmentInfoV3, error) {
	return c.v3().WALSegmentsV3(ctx, generation)
}

// OpenSnapshotV3 returns a v0.3.x snapshot's decompressed contents.
func (c *ReplicaClient) OpenSnapshotV3(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return c.v3().OpenSnapshotV3(ctx, generation, index)
}

// OpenWALSegmentV3 returns a v0.3.x WAL segment's decompressed contents.
func (c *ReplicaClient) OpenWALSegmentV3(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return c.v3().OpenWALSegmentV3(ctx, generation, index, offset)
}

// OpenSnapshotV3Raw returns a v0.3.x snapshot file as stored.
func (c *ReplicaClient) OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return c.v3().OpenSnapshotV3Raw(ctx, generation, index)
}

// OpenWALSegmentV3Raw returns a v0.3.x WAL segment file as stored.
func (c *ReplicaClient) OpenWALSegmentV3Raw(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return c.v3().OpenWALSegmentV3Raw(ctx, generation, index, offset)
}

// v3Store lists and opens local files for v3list; paths come slash-separated.
type v3Store struct{}

func (v3Store) List(ctx context.Context, dir string) ([]v3list.Entry, error) {
	dirEntries, err := os.ReadDir(filepath.FromSlash(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no directory: nothing stored
	} else if err != nil {
		return nil, err
	}
	entries := make([]v3list.Entry, 0, len(dirEntries))
	for _, e := range dirEntries {
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the directory was read
		} else if err != nil {
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(filepath.FromSlash(dir), e.Name()), err)
		}
		entries = append(entries, v3list.Entry{Name: e.Name(), Dir: e.IsDir(), Size: fi.Size(), MTime: fi.ModTime()})
	}
	return entries, nil
}

func (v3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.FromSlash(name))
	if pathErr := (*fs.PathError)(nil); errors.As(err, &pathErr) {
		return nil, pathErr.Err // v3list names the file
	} else if err != nil {
		return nil, err
	}
	return f, nil
}
