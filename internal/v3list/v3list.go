// Package v3list is the part of litestream.ReplicaClientV3 every object
// store shares: walking the v0.3.x layout (generations/<id>/snapshots|wal)
// through a backend's "list a directory" and "open a file", parsing names,
// sorting and decoding. A backend supplies a Store, and its seven
// ReplicaClientV3 and ReplicaClientV3Raw methods delegate to Methods.
package v3list

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/backend"
)

// Entry is one name directly under a listed directory.
type Entry struct {
	Name  string // base name
	Dir   bool   // a directory or common prefix
	Size  int64
	MTime time.Time // the time v0.3.x read as the file's creation time
}

// Store is a backend's view of its files by slash-separated path.
type Store interface {
	// List returns the entries directly under dir; none for a missing dir.
	List(ctx context.Context, dir string) ([]Entry, error)
	// Open returns a file's stored bytes; a missing file's error matches
	// os.ErrNotExist.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
}

// Reader reads the v0.3.x backup under Root in Store.
type Reader struct {
	Root  string
	Store Store
}

// GenerationsV3 implements litestream.ReplicaClientV3.
func (r Reader) GenerationsV3(ctx context.Context) ([]string, error) {
	dir := litestream.GenerationsPathV3(r.Root)
	entries, err := r.Store.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var gens []string
	for _, e := range entries {
		if e.Dir && litestream.IsGenerationIDV3(e.Name) {
			gens = append(gens, e.Name)
		}
	}
	slices.Sort(gens)
	return slices.Compact(gens), nil
}

// SnapshotsV3 implements litestream.ReplicaClientV3.
func (r Reader) SnapshotsV3(ctx context.Context, generation string) ([]litestream.SnapshotInfoV3, error) {
	dir := litestream.SnapshotsPathV3(r.Root, generation)
	entries, err := r.Store.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var infos []litestream.SnapshotInfoV3
	for _, e := range entries {
		if index, err := litestream.ParseSnapshotFilenameV3(e.Name); err == nil && !e.Dir {
			infos = append(infos, litestream.SnapshotInfoV3{Generation: generation, Index: index, Size: e.Size, CreatedAt: e.MTime.UTC()})
		}
	}
	slices.SortFunc(infos, func(a, b litestream.SnapshotInfoV3) int { return cmp.Compare(a.Index, b.Index) })
	return infos, nil
}

// WALSegmentsV3 implements litestream.ReplicaClientV3.
func (r Reader) WALSegmentsV3(ctx context.Context, generation string) ([]litestream.WALSegmentInfoV3, error) {
	dir := litestream.WALPathV3(r.Root, generation)
	entries, err := r.Store.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var infos []litestream.WALSegmentInfoV3
	for _, e := range entries {
		if index, offset, err := litestream.ParseWALSegmentFilenameV3(e.Name); err == nil && !e.Dir {
			infos = append(infos, litestream.WALSegmentInfoV3{Generation: generation, Index: index, Offset: offset, Size: e.Size, CreatedAt: e.MTime.UTC()})
		}
	}
	slices.SortFunc(infos, func(a, b litestream.WALSegmentInfoV3) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Offset, b.Offset))
	})
	return infos, nil
}

// OpenSnapshotV3 implements litestream.ReplicaClientV3.
func (r Reader) OpenSnapshotV3(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return decoded(r.OpenSnapshotV3Raw(ctx, generation, index))
}

// OpenWALSegmentV3 implements litestream.ReplicaClientV3.
func (r Reader) OpenWALSegmentV3(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return decoded(r.OpenWALSegmentV3Raw(ctx, generation, index, offset))
}

// OpenSnapshotV3Raw implements litestream.ReplicaClientV3Raw.
func (r Reader) OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	p := litestream.SnapshotPathV3(r.Root, generation, index)
	rc, err := r.Store.Open(ctx, p)
	if err != nil {
		return nil, openError(p, err)
	}
	return rc, nil
}

// OpenWALSegmentV3Raw implements litestream.ReplicaClientV3Raw.
func (r Reader) OpenWALSegmentV3Raw(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	p := litestream.WALSegmentPathV3(r.Root, generation, index, offset)
	rc, err := r.Store.Open(ctx, p)
	if err != nil {
		return nil, openError(p, err)
	}
	return rc, nil
}

// openError reports a failed open of the file at p as a *fs.PathError, as
// upstream's file client returns os.Open's: os.IsNotExist holds for a
// missing file on every backend (the SDK's cause is dropped then, as it
// says no more than that).
func openError(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		err = fs.ErrNotExist
	}
	return &fs.PathError{Op: "open", Path: p, Err: err}
}

func decoded(rc io.ReadCloser, err error) (io.ReadCloser, error) {
	if err != nil {
		return nil, err
	}
	return internal.OpenV3File(rc, nil)
}

// Methods implements litestream.ReplicaClientV3 and ReplicaClientV3Raw for
// a backend's ReplicaClient, whose seven methods delegate to the Methods it
// builds from its current root on each call. Errors start with the
// backend's name, as all its errors do.
type Methods struct {
	backend backend.Name
	reader  Reader
}

var (
	_ litestream.ReplicaClientV3    = Methods{}
	_ litestream.ReplicaClientV3Raw = Methods{}
)

// NewMethods returns the v0.3.x methods of a backend's client.
func NewMethods(name, root string, store Store) Methods {
	return Methods{backend: backend.Name(name), reader: Reader{Root: root, Store: store}}
}

// call runs fn on the Reader and prefixes its error with the backend's name.
func call[T any](m Methods, fn func(r Reader) (T, error)) (T, error) {
	v, err := fn(m.reader)
	if pe, ok := err.(*fs.PathError); ok && m.backend != "" {
		// Still a *fs.PathError, for os.IsNotExist: the name goes in Path.
		var zero T
		return zero, &fs.PathError{Op: pe.Op, Path: string(m.backend) + ": " + pe.Path, Err: pe.Err}
	} else if err != nil {
		var zero T
		return zero, m.backend.Wrap(err)
	}
	return v, nil
}

// GenerationsV3 returns the v0.3.x generation names, sorted.
func (m Methods) GenerationsV3(ctx context.Context) ([]string, error) {
	return call(m, func(r Reader) ([]string, error) { return r.GenerationsV3(ctx) })
}

// SnapshotsV3 returns a generation's v0.3.x snapshots sorted by index.
func (m Methods) SnapshotsV3(ctx context.Context, generation string) ([]litestream.SnapshotInfoV3, error) {
	return call(m, func(r Reader) ([]litestream.SnapshotInfoV3, error) { return r.SnapshotsV3(ctx, generation) })
}

// WALSegmentsV3 returns a generation's v0.3.x WAL segments sorted by index,
// then offset.
func (m Methods) WALSegmentsV3(ctx context.Context, generation string) ([]litestream.WALSegmentInfoV3, error) {
	return call(m, func(r Reader) ([]litestream.WALSegmentInfoV3, error) { return r.WALSegmentsV3(ctx, generation) })
}

// OpenSnapshotV3 returns a v0.3.x snapshot's decompressed contents.
func (m Methods) OpenSnapshotV3(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return call(m, func(r Reader) (io.ReadCloser, error) { return r.OpenSnapshotV3(ctx, generation, index) })
}

// OpenWALSegmentV3 returns a v0.3.x WAL segment's decompressed contents.
func (m Methods) OpenWALSegmentV3(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return call(m, func(r Reader) (io.ReadCloser, error) { return r.OpenWALSegmentV3(ctx, generation, index, offset) })
}

// OpenSnapshotV3Raw returns a v0.3.x snapshot file as stored.
func (m Methods) OpenSnapshotV3Raw(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return call(m, func(r Reader) (io.ReadCloser, error) { return r.OpenSnapshotV3Raw(ctx, generation, index) })
}

// OpenWALSegmentV3Raw returns a v0.3.x WAL segment file as stored.
func (m Methods) OpenWALSegmentV3Raw(ctx context.Context, generation string, index int, offset int64) (io.ReadCloser, error) {
	return call(m, func(r Reader) (io.ReadCloser, error) { return r.OpenWALSegmentV3Raw(ctx, generation, index, offset) })
}
