// The LTX encoder: writes the ltx package's bytes exactly while keeping the
// page index as encoded bytes (spilled to disk when large), with the pooled
// buffers the encode path uses.

package litestream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
)

// indexMemLimit is how many bytes of page index an ltxEncoder holds in
// memory before it spills the index to a temporary file: about 110,000
// pages, a 450 MB database at 4 KB pages.
const indexMemLimit = 1 << 20

// ltxEncoder writes an LTX file byte for byte as ltx.Encoder does, but with
// memory that does not grow with the file. ltx.Encoder keeps a map entry of
// about 100 bytes per page until Close, so that it can write the page index
// in page order: 100 MB for a 4 GB snapshot. Pages must be encoded in
// ascending order anyway, so the index is produced in the order it is
// written; it is kept as its encoded bytes, and past indexMemLimit those
// go to an unlinked temporary file in spillDir.
type ltxEncoder struct {
	w        io.Writer
	spillDir string // "" for os.TempDir
	memLimit int

	hdr      ltx.Header
	trailer  ltx.Trailer
	hash     hash.Hash64
	n        int64
	prevPgno uint32
	closed   bool

	scratch *encodeScratch // from encodeScratchPool until release
	frame   [ltx.PageHeaderSize + 4]byte

	index      []byte   // encoded index entries not yet spilled
	indexN     int64    // bytes of index entries so far, spilled or not
	spill      *os.File // nil until the index outgrows memLimit
	spillPath  string   // set while the spill file still has a name to remove
	indexEntry [3 * binary.MaxVarintLen64]byte
}

// encodeScratch is an encoder's compression state: lz4's hash table (about
// 140 KB) and a block buffer. It is pooled because allocating it for every
// small L0 file made the garbage collector run often enough to show in the
// replication lag's tail.
type encodeScratch struct {
	compressor lz4.Compressor
	buf        []byte
}

var encodeScratchPool = sync.Pool{New: func() any { return new(encodeScratch) }}

// headerTimestamp is the LTX header time of a file written at t: t in
// milliseconds, rounded up. Rounding down would date a file before the
// commits it holds when they fall in the millisecond of a restore's
// timestamp, and a restore to a time taken just before a commit would hold
// that commit.
func headerTimestamp(t time.Time) int64 {
	return (t.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

func newLTXEncoder(w io.Writer, spillDir string) *ltxEncoder {
	return &ltxEncoder{w: w, spillDir: spillDir, memLimit: indexMemLimit}
}

// EncodeHeader validates and writes the file header.
func (enc *ltxEncoder) EncodeHeader(hdr ltx.Header) error {
	if enc.hash != nil {
		return fmt.Errorf("ltx header already encoded")
	} else if err := hdr.Validate(); err != nil {
		return err
	}
	b, err := hdr.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshal header: %w", err)
	}
	enc.hdr, enc.hash = hdr, crc64.New(crcISO)
	return enc.write(b)
}

// EncodePage compresses and writes one page. Pages come in ascending order,
// and for a snapshot every page from 1 to the commit but the lock page.
func (enc *ltxEncoder) EncodePage(hdr ltx.PageHeader, data []byte) error {
	if enc.hash == nil || enc.closed {
		return fmt.Errorf("encode page %d: encoder not open for pages", hdr.Pgno)
	} else if hdr.Pgno > enc.hdr.Commit {
		return fmt.Errorf("page number %d out-of-bounds for commit size %d", hdr.Pgno, enc.hdr.Commit)
	} else if err := hdr.Validate(); err != nil {
		return err
	} else if uint32(len(data)) != enc.hdr.PageSize {
		return fmt.Errorf("invalid page buffer size: %d, expecting %d", len(data), enc.hdr.PageSize)
	}
	lockPgno := ltx.LockPgno(enc.hdr.PageSize)
	if hdr.Pgno == lockPgno {
		return fmt.Errorf("cannot encode lock page: pgno=%d", hdr.Pgno)
	}
	if enc.hdr.IsSnapshot() {
		want := enc.prevPgno + 1
		if want == lockPgno {
			want++
		}
		if hdr.Pgno != want {
			return fmt.Errorf("nonsequential page numbers in snapshot: %d after %d", hdr.Pgno, enc.prevPgno)
		}
	} else if hdr.Pgno <= enc.prevPgno {
		return fmt.Errorf("out-of-order page numbers: %d,%d", enc.prevPgno, hdr.Pgno)
	}

	if enc.scratch == nil {
		enc.scratch = encodeScratchPool.Get().(*encodeScratch)
		if bound := lz4.CompressBlockBound(int(enc.hdr.PageSize)); len(enc.scratch.buf) < bound {
			enc.scratch.buf = make([]byte, bound)
		}
	}
	n, err := enc.scratch.compressor.CompressBlock(data, enc.scratch.buf)
	if err != nil {
		return fmt.Errorf("compress page %d: %w", hdr.Pgno, err)
	} else if n == 0 {
		return fmt.Errorf("compress page %d: lz4 block compression failed", hdr.Pgno)
	}

	offset := enc.n
	hdr.Flags |= ltx.PageHeaderFlagSize
	binary.BigEndian.PutUint32(enc.frame[0:], hdr.Pgno)
	binary.BigEndian.PutUint16(enc.frame[4:], hdr.Flags)
	binary.BigEndian.PutUint32(enc.frame[ltx.PageHeaderSize:], uint32(n))
	if err := enc.write(enc.frame[:]); err != nil {
		return fmt.Errorf("write page %d header: %w", hdr.Pgno, err)
	}
	// As in ltx, the checksum covers the uncompressed page.
	if _, err := enc.w.Write(enc.scratch.buf[:n]); err != nil {
		return fmt.Errorf("write page %d: %w", hdr.Pgno, err)
	}
	_, _ = enc.hash.Write(data)
	enc.n += int64(n)
	enc.prevPgno = hdr.Pgno
	return enc.addIndexEntry(hdr.Pgno, offset, enc.n-offset)
}

// SetPostApplyChecksum sets the trailer's post-apply checksum; call it
// before Close.
func (enc *ltxEncoder) SetPostApplyChecksum(chksum ltx.Checksum) {
	enc.trailer.PostApplyChecksum = chksum
}

// Header returns the header written.
func (enc *ltxEncoder) Header() ltx.Header { return enc.hdr }

// Trailer returns the trailer, complete after Close.
func (enc *ltxEncoder) Trailer() ltx.Trailer { return enc.trailer }

// Close ends the page block and writes the page index and the trailer. It
// removes the spill file, as does release on paths that never reach Close.
func (enc *ltxEncoder) Close() error {
	defer enc.release()
	if enc.hash == nil || enc.closed {
		return fmt.Errorf("close ltx encoder: no header, or already closed")
	}
	enc.closed = true
	if err := enc.write(make([]byte, ltx.PageHeaderSize)); err != nil {
		return fmt.Errorf("write end of page block: %w", err)
	}
	if err := enc.writeIndex(); err != nil {
		return fmt.Errorf("write page index: %w", err)
	}

	b, err := enc.trailer.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshal trailer: %w", err)
	}
	_, _ = enc.hash.Write(b[:ltx.TrailerChecksumOffset])
	enc.trailer.FileChecksum = ltx.ChecksumFlag | ltx.Checksum(enc.hash.Sum64())
	if err := enc.trailer.Validate(enc.hdr); err != nil {
		return fmt.Errorf("validate trailer: %w", err)
	} else if enc.hdr.Commit == 0 && enc.trailer.PostApplyChecksum != ltx.ChecksumFlag {
		return fmt.Errorf("post-apply checksum must be empty for zero-length database")
	}
	if b, err = enc.trailer.MarshalBinary(); err != nil {
		return fmt.Errorf("marshal trailer: %w", err)
	} else if _, err := enc.w.Write(b); err != nil {
		return fmt.Errorf("write trailer: %w", err)
	}
	enc.n += int64(len(b))
	return nil
}

// release returns the compression state to its pool and closes and removes
// the spill file, if any. The encoder encodes no more pages after it.
func (enc *ltxEncoder) release() {
	if enc.scratch != nil {
		encodeScratchPool.Put(enc.scratch)
		enc.scratch = nil
	}
	if enc.spill != nil {
		_ = enc.spill.Close()
		enc.spill = nil
	}
	if enc.spillPath != "" {
		_ = os.Remove(enc.spillPath)
		enc.spillPath = ""
	}
}

// write writes b and adds it to the file checksum.
func (enc *ltxEncoder) write(b []byte) error {
	n, err := enc.w.Write(b)
	_, _ = enc.hash.Write(b[:n])
	enc.n += int64(n)
	return err
}

// addIndexEntry appends a page's index entry, spilling the entries held in
// memory once they pass memLimit.
func (enc *ltxEncoder) addIndexEntry(pgno uint32, offset, size int64) error {
	e := binary.AppendUvarint(enc.indexEntry[:0], uint64(pgno))
	e = binary.AppendUvarint(e, uint64(offset))
	e = binary.AppendUvarint(e, uint64(size))
	enc.index = append(enc.index, e...)
	enc.indexN += int64(len(e))
	if len(enc.index) < enc.memLimit {
		return nil
	}
	if enc.spill == nil {
		f, err := os.CreateTemp(enc.spillDir, ".ltx-index-*.tmp")
		if err != nil {
			return fmt.Errorf("spill page index: %w", err)
		}
		enc.spill, enc.spillPath = f, f.Name()
		if os.Remove(f.Name()) == nil { // unlinked, so a crash leaves nothing behind
			enc.spillPath = ""
		}
	}
	if _, err := enc.spill.Write(enc.index); err != nil {
		return fmt.Errorf("spill page index to %s: %w", enc.spill.Name(), err)
	}
	enc.index = enc.index[:0]
	return nil
}

// writeIndex writes the page index: its entries, an end marker, and the
// size of both.
func (enc *ltxEncoder) writeIndex() error {
	if enc.spill != nil {
		if _, err := enc.spill.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewind %s: %w", enc.spill.Name(), err)
		}
		br := bufio.NewReaderSize(enc.spill, 64<<10)
		if n, err := io.Copy(writerFunc(enc.write), br); err != nil {
			return fmt.Errorf("copy from %s: %w", enc.spill.Name(), err)
		} else if n != enc.indexN-int64(len(enc.index)) {
			return fmt.Errorf("copy from %s: %w", enc.spill.Name(), errors.New("spilled index changed size"))
		}
	}
	if err := enc.write(enc.index); err != nil {
		return err
	}
	var tail [1 + 8]byte // end marker (a zero varint), then the size
	binary.BigEndian.PutUint64(tail[1:], uint64(enc.indexN+1))
	return enc.write(tail[:])
}

// writerFunc adapts an error-only write function to io.Writer.
type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// encodeBufferSize is the write buffer in front of an LTX destination and
// the read-ahead of database pages: the encoder makes two small writes per
// page, and a snapshot reads every page in order.
const encodeBufferSize = 256 << 10

// Write buffers and read-ahead runs are pooled: a sync of one small commit
// would otherwise allocate half a megabyte, and the garbage collection that
// drives showed in the replication lag's tail.
var (
	encodeWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, encodeBufferSize) }}
	readAheadPool    = sync.Pool{New: func() any { return new([encodeBufferSize]byte) }}
)

// getEncodeWriter returns a pooled write buffer in front of w.
func getEncodeWriter(w io.Writer) *bufio.Writer {
	bw := encodeWriterPool.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

// putEncodeWriter returns bw, flushed or abandoned, to the pool.
func putEncodeWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	encodeWriterPool.Put(bw)
}
