// Package backend is what every ReplicaClient does the same way, written
// once: the error rule, the LTX header timestamp of a write, the file info of
// a listed name and the timestamp stored beside it, per-file and batch
// deletes, retries, the connection made on first use and the logger. A
// backend's own files then hold only what its SDK makes it do.
//
// The error rule: every error a backend returns starts with its Type() name
// and a colon ("s3: ..."), and a failure on one LTX file (open, write,
// delete) is a *litestream.LTXError naming the file's key or path, level
// and TXIDs, with the cause kept for errors.Is (a missing file matches
// os.ErrNotExist).
package backend

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
)

// Name is a backend's ReplicaClient.Type() string. Its methods build that
// backend's errors by the rule in the package documentation.
type Name string

// Errorf returns an error "<name>: <format>".
func (n Name) Errorf(format string, args ...any) error {
	return fmt.Errorf(string(n)+": "+format, args...)
}

// Wrap prefixes err with "<name>: " unless it already starts so; nil stays
// nil, and so does err for an empty name (a zero value knows no backend).
func (n Name) Wrap(err error) error {
	if err == nil || n == "" || strings.HasPrefix(err.Error(), string(n)+": ") {
		return err
	}
	return fmt.Errorf("%s: %w", n, err)
}

// LTXError returns err as a failure to op ("open", "write", "delete") the
// LTX file stored under key; nil stays nil.
func (n Name) LTXError(op, key string, level int, minTXID, maxTXID ltx.TXID, err error) error {
	if err == nil {
		return nil
	}
	// No Hint: the hints of litestream.NewLTXError speak of local files.
	return fmt.Errorf("%s: %w", n, &litestream.LTXError{
		Op: op, Path: key, Level: level, MinTXID: uint64(minTXID), MaxTXID: uint64(maxTXID), Err: err,
	})
}

// NotExist marks an SDK's "not found" error as os.ErrNotExist, keeping it.
func NotExist(err error) error { return fmt.Errorf("%w: %w", os.ErrNotExist, err) }

// Opened finishes an OpenLTXFile: the SDK's error, if any, becomes the
// open error of the file under key (marked os.ErrNotExist when missing
// says so); otherwise rc is returned, limited to size bytes when size > 0.
func (n Name) Opened(key string, level int, minTXID, maxTXID ltx.TXID, size int64, rc io.ReadCloser, err error, missing func(error) bool) (io.ReadCloser, error) {
	if err != nil {
		if missing(err) {
			err = NotExist(err)
		}
		return nil, n.LTXError("open", key, level, minTXID, maxTXID, err)
	}
	if size > 0 {
		return internal.LimitReadCloser(rc, size), nil
	}
	return rc, nil
}

// Writer stores a whole LTX file under key, its header timestamp being ts,
// and returns the bytes stored.
type Writer func(key string, r io.Reader, ts time.Time) (size int64, err error)

// WriteLTX is WriteLTXFile around a backend's write: it reads the header
// timestamp from r, calls write with the file's key and a reader of the
// whole file, and returns the stored file's info, CreatedAt being that
// timestamp. A seekable r is read from and rewound, and passed on as it is.
func (n Name) WriteLTX(level int, minTXID, maxTXID ltx.TXID, r io.Reader, key func(level int, minTXID, maxTXID ltx.TXID) string, write Writer) (*ltx.FileInfo, error) {
	k := key(level, minTXID, maxTXID)
	ts, r, err := peekTimestamp(r)
	if err != nil {
		return nil, n.LTXError("write", k, level, minTXID, maxTXID, err)
	}
	size, err := write(k, r, ts)
	if err != nil {
		return nil, n.LTXError("write", k, level, minTXID, maxTXID, err)
	}
	return &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: size, CreatedAt: ts}, nil
}

// peekTimestamp returns the header timestamp of r and a reader of all of r:
// a seekable r itself, rewound (so an uploader can read parts in place),
// any other one the bytes peeked followed by the rest.
func peekTimestamp(r io.Reader) (time.Time, io.Reader, error) {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		return internal.PeekLTXTimestamp(r)
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return internal.PeekLTXTimestamp(r) // a pipe or socket behind the interface
	}
	ts, _, err := internal.PeekLTXTimestamp(rs)
	if err != nil {
		return time.Time{}, nil, err
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return time.Time{}, nil, fmt.Errorf("rewind after the LTX header: %w", err)
	}
	return ts, rs, nil
}

// DeleteEach deletes the files one by one with del, given each file's key;
// the first failure is returned as the delete error of that file.
func (n Name) DeleteEach(a []*ltx.FileInfo, key func(level int, minTXID, maxTXID ltx.TXID) string, del func(key string) error) error {
	for _, info := range a {
		k := key(info.Level, info.MinTXID, info.MaxTXID)
		if err := del(k); err != nil {
			return n.LTXError("delete", k, info.Level, info.MinTXID, info.MaxTXID, err)
		}
	}
	return nil
}

// DeleteBatch deletes the files with a backend's batch delete, given each
// file's key; a failure names how many files and the first one.
func (n Name) DeleteBatch(a []*ltx.FileInfo, key func(level int, minTXID, maxTXID ltx.TXID) string, del func(keys []string) error) error {
	if len(a) == 0 {
		return nil
	}
	keys := make([]string, len(a))
	for i, info := range a {
		keys[i] = key(info.Level, info.MinTXID, info.MaxTXID)
	}
	if err := del(keys); err != nil {
		return n.Errorf("delete %d ltx files (first %s): %w", len(a), keys[0], err)
	}
	return nil
}
