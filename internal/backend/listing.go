// Listing helpers: the info of a listed LTX name, the timestamp stored
// beside a file, HEADs that fetch it where a listing lacks it, and batches.

package backend

import (
	"context"
	"strings"
	"time"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
)

// Batches calls fn with successive slices of at most size keys.
func Batches(keys []string, size int, fn func(batch []string) error) error {
	for len(keys) > 0 {
		batch := keys[:min(len(keys), size)]
		keys = keys[len(batch):]
		if err := fn(batch); err != nil {
			return err
		}
	}
	return nil
}

// FileInfo returns the info of a listed file of level, or nil when name (a
// base name) is not an LTX file name or its MinTXID is below seek.
func FileInfo(name string, level int, seek ltx.TXID, size int64, createdAt time.Time) *ltx.FileInfo {
	minTXID, maxTXID, err := ltx.ParseFilename(name)
	if err != nil || minTXID < seek {
		return nil
	}
	return &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: size, CreatedAt: createdAt.UTC()}
}

// CreatedAt returns the timestamp a backend stored beside a file (metadata
// or header, written with internal.FormatTimestamp), else fallback: the
// store's own time of the file.
func CreatedAt(stored string, fallback time.Time) time.Time {
	if ts, err := internal.ParseTimestamp(stored); err == nil {
		return ts.UTC()
	}
	return fallback.UTC()
}

// DefaultHeadConcurrency is how many HEAD requests FillCreatedAt runs at
// once when the backend sets no limit.
const DefaultHeadConcurrency = 50

// FillCreatedAt replaces each listed file's CreatedAt with the timestamp
// stored beside it, read by head (a HEAD request of keys[i]), up to limit at
// once. A failed HEAD keeps the listed time, as upstream; only a done ctx
// is an error.
func FillCreatedAt(ctx context.Context, limit int, keys []string, infos []*ltx.FileInfo, head func(ctx context.Context, key string) (stored string, err error)) error {
	if limit <= 0 {
		limit = DefaultHeadConcurrency
	}
	var g errgroup.Group
	g.SetLimit(limit)
	for i := range keys {
		g.Go(func() error {
			if stored, err := head(ctx, keys[i]); err == nil {
				infos[i].CreatedAt = CreatedAt(stored, infos[i].CreatedAt)
			}
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

// ScopePrefix is the key prefix a DeleteAll removes: everything under
// "<path>/", or with an empty path the replica's "ltx/" tree only, not the
// rest of the bucket.
func ScopePrefix(path string) string {
	if path == "" {
		return litestream.LTXDir("") + "/"
	}
	return strings.TrimSuffix(path, "/") + "/"
}
