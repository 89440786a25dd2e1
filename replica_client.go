// The ReplicaClient interface every backend implements, and the LTX file
// layout and helpers the backends share.

package litestream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"time"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
)

// DefaultEstimatedPageIndexSize is how much of a file's tail FetchPageIndex
// reads first, hoping the whole index is inside it.
const DefaultEstimatedPageIndexSize = 32 * 1024

// ReplicaClient stores LTX files for one replica. Files are keyed by level and
// TXID range; backends store them at LTXFilePath(root, level, min, max) (s3 and
// oss use their own prefix form). Implementations must be safe for
// concurrent use.
type ReplicaClient interface {
	// Type returns the backend's short name, e.g. "file" or "s3".
	Type() string

	// Init connects and validates configuration. It is idempotent.
	Init(ctx context.Context) error

	// LTXFiles iterates the level's files whose MinTXID is at least seek, in
	// ascending (MinTXID, MaxTXID) order. A missing level is empty. With
	// useMetadata, CreatedAt must be the LTX header timestamp.
	LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error)

	// OpenLTXFile returns a reader starting at offset (0 = start) returning
	// at most size bytes (0 = to the end). A missing file gives an error
	// matching errors.Is(err, os.ErrNotExist).
	OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error)

	// WriteLTXFile stores r atomically and keeps the LTX header timestamp as
	// the file's creation time.
	WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error)

	// DeleteLTXFiles deletes the files; missing files are not errors.
	DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error

	// DeleteAll deletes everything under the client's root, and nothing else.
	DeleteAll(ctx context.Context) error

	// SetLogger replaces the client's logger.
	SetLogger(logger *slog.Logger)
}

// LTXDir returns the slash-separated LTX directory under root.
func LTXDir(root string) string { return path.Join(root, "ltx") }

// LTXLevelDir returns the slash-separated directory of a level under root.
func LTXLevelDir(root string, level int) string {
	return path.Join(LTXDir(root), strconv.Itoa(level))
}

// LTXFilePath returns the slash-separated path of an LTX file under root.
func LTXFilePath(root string, level int, minTXID, maxTXID ltx.TXID) string {
	return path.Join(LTXLevelDir(root, level), ltx.FormatFilename(minTXID, maxTXID))
}

// FindLTXFiles returns the level's files for which filter returns true. A
// filter returning ErrStopIter ends the walk early without an error.
func FindLTXFiles(ctx context.Context, client ReplicaClient, level int, useMetadata bool, filter func(*ltx.FileInfo) (bool, error)) ([]*ltx.FileInfo, error) {
	itr, err := client.LTXFiles(ctx, level, 0, useMetadata)
	if err != nil {
		return nil, err
	}
	defer func() { _ = itr.Close() }()

	var a []*ltx.FileInfo
	for itr.Next() {
		item := itr.Item()
		match, err := filter(item)
		if match {
			a = append(a, item)
		}
		if err == ErrStopIter {
			break
		} else if err != nil {
			return a, err
		}
	}
	if err := itr.Close(); err != nil {
		return nil, err
	}
	return a, nil
}

// FetchLTXHeader reads and parses the header of a stored LTX file.
func FetchLTXHeader(ctx context.Context, client ReplicaClient, info *ltx.FileInfo) (ltx.Header, error) {
	rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, ltx.HeaderSize)
	if err != nil {
		return ltx.Header{}, fmt.Errorf("open ltx file: %w", err)
	}
	defer func() { _ = rc.Close() }()

	hdr, _, err := ltx.DecodeHeader(rc)
	if err != nil {
		return ltx.Header{}, fmt.Errorf("decode ltx header of L%d %s-%s: %w", info.Level, info.MinTXID, info.MaxTXID, err)
	}
	return hdr, nil
}

// headerFetchConcurrency bounds the parallel reads of FetchLTXHeaderTimestamps.
const headerFetchConcurrency = 8

// FetchLTXHeaderTimestamps sets each file's CreatedAt to its LTX header
// timestamp, for backends that cannot store it as metadata. A file deleted
// meanwhile keeps the CreatedAt it had.
func FetchLTXHeaderTimestamps(ctx context.Context, client ReplicaClient, infos []*ltx.FileInfo) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(headerFetchConcurrency)
	for _, info := range infos {
		g.Go(func() error {
			hdr, err := FetchLTXHeader(ctx, client, info)
			if errors.Is(err, os.ErrNotExist) {
				return nil
			} else if err != nil {
				return err
			}
			info.CreatedAt = time.UnixMilli(hdr.Timestamp).UTC()
			return nil
		})
	}
	return g.Wait()
}

// FetchPageIndex reads the page index from the tail of a stored LTX file.
func FetchPageIndex(ctx context.Context, client ReplicaClient, info *ltx.FileInfo) (map[uint32]ltx.PageIndexElem, error) {
	const tailN = 8 + ltx.TrailerSize // index size field + trailer

	offset := max(info.Size-DefaultEstimatedPageIndexSize, 0)
	tail, err := readRange(ctx, client, info, offset, info.Size-offset)
	if err != nil {
		return nil, err
	}
	if len(tail) < tailN {
		return nil, fmt.Errorf("ltx file too short to contain a page index: %d bytes", len(tail))
	}

	indexN := int64(binary.BigEndian.Uint64(tail[len(tail)-tailN:]))
	if indexN <= 0 || indexN > info.Size-ltx.HeaderSize-tailN {
		return nil, fmt.Errorf("invalid page index size %d in L%d %s-%s", indexN, info.Level, info.MinTXID, info.MaxTXID)
	}

	// The index is followed by its own 8-byte size, which the decoder reads.
	var index []byte
	if int64(len(tail)) >= indexN+tailN {
		index = tail[int64(len(tail))-tailN-indexN : len(tail)-ltx.TrailerSize]
	} else if index, err = readRange(ctx, client, info, info.Size-tailN-indexN, indexN+8); err != nil {
		return nil, err
	}
	return ltx.DecodePageIndex(bytes.NewReader(index), info.Level, info.MinTXID, info.MaxTXID)
}

// FetchPage reads and decodes one page frame of a stored LTX file.
func FetchPage(ctx context.Context, client ReplicaClient, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (ltx.PageHeader, []byte, error) {
	info := &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID}
	b, err := readRange(ctx, client, info, offset, size)
	if err != nil {
		return ltx.PageHeader{}, nil, err
	}
	return ltx.DecodePageData(b)
}

func readRange(ctx context.Context, client ReplicaClient, info *ltx.FileInfo, offset, size int64) ([]byte, error) {
	rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, offset, size)
	if err != nil {
		return nil, fmt.Errorf("open ltx file: %w", err)
	}
	defer func() { _ = rc.Close() }()

	b, err := io.ReadAll(io.LimitReader(rc, size))
	if err != nil {
		return nil, fmt.Errorf("read L%d %s-%s at %d: %w", info.Level, info.MinTXID, info.MaxTXID, offset, err)
	}
	return b, nil
}
