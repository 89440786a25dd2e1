// Reading LTX files from a replica client: listing a level, reading a
// header, streams that resume after a failure, spooling a plan's files
// ahead of the applier, and verifying files where they are stored.

package litestream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/superfly/ltx"
)

// errNoReplicaClient is returned by a Compactor built without NewCompactor
// or by a DB without a replica client.
var errNoReplicaClient = errors.New("no replica client configured")

// listFrom lists a level's files with MinTXID >= seek.
func listFrom(ctx context.Context, client ReplicaClient, level int, seek ltx.TXID) ([]*ltx.FileInfo, error) {
	if client == nil {
		return nil, errNoReplicaClient
	}
	itr, err := client.LTXFiles(ctx, level, seek, false)
	if err != nil {
		return nil, err
	}
	return ltx.SliceFileIterator(itr)
}

// readRemoteHeader reads the header of the replica file holding just txid.
func readRemoteHeader(ctx context.Context, client ReplicaClient, level int, txid ltx.TXID) (ltx.Header, error) {
	return readRemoteHeaderOf(ctx, client, &ltx.FileInfo{Level: level, MinTXID: txid, MaxTXID: txid})
}

// readRemoteHeaderOf reads the header of the replica file info names.
func readRemoteHeaderOf(ctx context.Context, client ReplicaClient, info *ltx.FileInfo) (ltx.Header, error) {
	rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, ltx.HeaderSize)
	if err != nil {
		return ltx.Header{}, err
	}
	defer func() { _ = rc.Close() }()
	b := make([]byte, ltx.HeaderSize)
	if _, err := io.ReadFull(rc, b); err != nil {
		return ltx.Header{}, err
	}
	var hdr ltx.Header
	return hdr, hdr.UnmarshalBinary(b)
}

// verifyLTXFiles returns an error naming the first replica file that is
// corrupt, does not hold what its name says, or has another page size than
// the files before it (a file of another database).
func verifyLTXFiles(ctx context.Context, client ReplicaClient, infos []*ltx.FileInfo) error {
	var pageSize uint32
	for _, info := range infos {
		hdr, err := verifyRemoteLTX(ctx, client, info)
		if err != nil {
			return err
		}
		if pageSize == 0 {
			pageSize = hdr.PageSize
		} else if hdr.PageSize != pageSize {
			return NewLTXError("verify", LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID), info.Level, uint64(info.MinTXID), uint64(info.MaxTXID),
				fmt.Errorf("page size %d, earlier files have %d", hdr.PageSize, pageSize))
		}
	}
	return nil
}

// verifyRemoteLTX reads a whole replica file, checks its structure,
// checksum and TXID range, and returns its header.
func verifyRemoteLTX(ctx context.Context, client ReplicaClient, info *ltx.FileInfo) (ltx.Header, error) {
	path := LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID)
	rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return ltx.Header{}, NewLTXError("open", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	}
	defer func() { _ = rc.Close() }()

	hdr, _, err := verifyLTX(bufio.NewReader(rc))
	if err == nil {
		err = checkLTXName(hdr, info)
	}
	if err != nil {
		return ltx.Header{}, NewLTXError("verify", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	}
	return hdr, nil
}

// openPlanReaders returns one reader per plan file, in plan order; the
// caller closes each once it is applied, and cleanup closes the rest. At
// most parallelism files are read from the replica at once. With one, each
// file streams in turn. Otherwise the first file (normally the snapshot)
// streams into the merge while the rest are downloaded ahead into unlinked
// temporary files in dir, so that memory does not grow with their size; at
// most planSpoolWindow per download slot are held, so that descriptors do
// not grow with the plan's length either.
func openPlanReaders(ctx context.Context, client ReplicaClient, plan []*ltx.FileInfo, dir string, parallelism int) ([]io.ReadCloser, func()) {
	rdrs := make([]io.ReadCloser, 0, len(plan))
	if parallelism <= 1 || len(plan) == 1 {
		for _, info := range plan {
			rdrs = append(rdrs, newResumableReader(ctx, client, info, nil)) // opened at its first read
		}
		return rdrs, func() { closeAll(rdrs) }
	}

	ctx, cancel := context.WithCancel(ctx)
	rdrs = append(rdrs, newResumableReader(ctx, client, plan[0], nil))
	// The stream holds one slot.
	workers := parallelism - 1
	window := make(chan struct{}, workers*planSpoolWindow)
	queue := make(chan *spooledReader, len(plan)-1)
	for _, info := range plan[1:] {
		s := &spooledReader{info: info, ready: make(chan struct{})}
		rdrs = append(rdrs, s)
		queue <- s
	}
	close(queue)
	var wg sync.WaitGroup
	for range min(workers, len(plan)-1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// A slot is taken before the next file is: the files holding
				// slots are then always the earliest not yet applied, and the
				// applier, which frees them, never waits on a file without one.
				held := false
				select {
				case window <- struct{}{}:
					held = true
				case <-ctx.Done():
				}
				s, ok := <-queue
				if !ok || !held || ctx.Err() != nil {
					if held {
						<-window
					}
					if ok {
						s.fail(context.Cause(ctx))
						continue
					}
					return
				}
				s.window = window
				s.download(ctx, client, dir)
			}
		}()
	}
	downloaded := make(chan struct{})
	go func() { wg.Wait(); close(downloaded) }()
	return rdrs, func() { cancel(); <-downloaded; closeAll(rdrs) }
}

// planSpoolWindow is how many downloaded files, per download slot, a
// restore holds ahead of the one it applies.
const planSpoolWindow = 2

func closeAll(closers []io.ReadCloser) {
	for _, c := range closers {
		_ = c.Close()
	}
}

// spooledReader reads a file once its download to a temporary file ends.
// From its download to its Close it holds a slot of window.
type spooledReader struct {
	info   *ltx.FileInfo
	ready  chan struct{}
	window chan struct{}
	f      *os.File
	err    error
	closed bool
}

func (s *spooledReader) download(ctx context.Context, client ReplicaClient, dir string) {
	f, err := os.CreateTemp(dir, ".litestream-restore-*.ltx")
	if err != nil {
		s.fail(fmt.Errorf("create spool file: %w", err))
		return
	}
	_ = os.Remove(f.Name()) // unlinked: the descriptor keeps it until closed

	rd := newResumableReader(ctx, client, s.info, nil)
	defer func() { _ = rd.Close() }()
	if _, err := io.Copy(f, rd); err != nil {
		_ = f.Close()
		s.fail(err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = f.Close()
		s.fail(err)
		return
	}
	s.f = f
	close(s.ready)
}

func (s *spooledReader) fail(err error) {
	s.err = err
	close(s.ready)
}

func (s *spooledReader) Read(p []byte) (int, error) {
	<-s.ready
	if s.err != nil {
		return 0, s.err
	} else if s.closed {
		return 0, os.ErrClosed
	}
	return s.f.Read(p)
}

// Close closes the spooled file and frees its slot; it is called once the
// file is applied, and again by the plan's cleanup.
func (s *spooledReader) Close() error {
	<-s.ready
	if s.closed {
		return nil
	}
	s.closed = true
	if s.window != nil {
		<-s.window
	}
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// Retry policy for reading replica files.
const (
	resumableMaxRetries = 3
	resumableBaseDelay  = 250 * time.Millisecond
)

// resumableReader reads a replica file and, when the stream fails or ends
// early, reopens it at the current offset, up to three times with backoff.
type resumableReader struct {
	ctx     context.Context
	client  ReplicaClient
	info    *ltx.FileInfo
	rc      io.ReadCloser
	offset  int64
	retries int
}

// newResumableReader wraps an open stream, or opens lazily when rc is nil.
func newResumableReader(ctx context.Context, client ReplicaClient, info *ltx.FileInfo, rc io.ReadCloser) *resumableReader {
	return &resumableReader{ctx: ctx, client: client, info: info, rc: rc}
}

func (r *resumableReader) Read(p []byte) (int, error) {
	for {
		if r.rc == nil && r.info.Size > 0 && r.offset >= r.info.Size {
			// All read, the stream failed at its end: a reopen there is an
			// empty range, which s3, gs and oss refuse (416).
			return 0, io.EOF
		}
		if r.rc == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.rc.Read(p)
		r.offset += int64(n)
		if err == nil || (err == io.EOF && (r.info.Size == 0 || r.offset >= r.info.Size)) {
			return n, err
		}
		if n > 0 {
			return n, nil // hand over what arrived; the next read reopens
		}
		_ = r.rc.Close()
		r.rc = nil
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if retryErr := r.backoff(err); retryErr != nil {
			return 0, retryErr
		}
	}
}

func (r *resumableReader) open() error {
	for {
		rc, err := r.client.OpenLTXFile(r.ctx, r.info.Level, r.info.MinTXID, r.info.MaxTXID, r.offset, 0)
		if err == nil {
			r.rc = rc
			return nil
		}
		if errors.Is(err, os.ErrNotExist) || r.ctx.Err() != nil {
			return fmt.Errorf("open L%d %s-%s: %w", r.info.Level, r.info.MinTXID, r.info.MaxTXID, err)
		}
		if retryErr := r.backoff(err); retryErr != nil {
			return retryErr
		}
	}
}

func (r *resumableReader) backoff(cause error) error {
	if r.retries >= resumableMaxRetries {
		return fmt.Errorf("max retries exceeded reading ltx file (L%d %s-%s at offset %d): %w", r.info.Level, r.info.MinTXID, r.info.MaxTXID, r.offset, cause)
	}
	delay := resumableBaseDelay << r.retries
	r.retries++
	select {
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	case <-time.After(delay):
		return nil
	}
}

func (r *resumableReader) Close() error {
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}
