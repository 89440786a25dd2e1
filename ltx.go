package litestream

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/superfly/ltx"
)

// catchLTXPanic turns a panic inside the ltx package into an error wrapping
// ErrLTXCorrupted: ltx v0.5.2's Decoder.Close slices out of range on a file
// that ends less than 8 bytes after its page block.
func catchLTXPanic(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: decode ltx: %v", ErrLTXCorrupted, r)
	}
}

// verifyLTX reads a whole LTX file, checking its structure and checksum,
// and returns its header and trailer.
func verifyLTX(r io.Reader) (hdr ltx.Header, trailer ltx.Trailer, err error) {
	defer catchLTXPanic(&err)
	dec := ltx.NewDecoder(newFrameGuard(r))
	if err := dec.Verify(); err != nil {
		return hdr, trailer, fmt.Errorf("%w: %w", ErrLTXCorrupted, err)
	}
	return dec.Header(), dec.Trailer(), nil
}

// compactLTX merges LTX streams, oldest first, into one NoChecksum file on w.
func compactLTX(ctx context.Context, w io.Writer, rdrs []io.Reader) (err error) {
	defer catchLTXPanic(&err)
	guarded := make([]io.Reader, len(rdrs))
	for i, rd := range rdrs {
		guarded[i] = newFrameGuard(rd)
	}
	cmp, err := ltx.NewCompactor(w, guarded)
	if err != nil {
		return err
	}
	cmp.HeaderFlags = ltx.HeaderFlagNoChecksum
	return cmp.Compact(ctx)
}

// frameGuard passes an LTX stream through and fails it at a page frame whose
// compressed size is more than a page can compress to: ltx v0.5.2 allocates
// that size before reading it, so a damaged size prefix asks for up to 4 GiB.
// It follows frames up to the end of the page block, or up to a legacy frame
// (an LZ4 frame stream with no size prefix), and passes the rest unchecked.
type frameGuard struct {
	r        io.Reader
	maxSize  uint32 // largest valid compressed size, known after the header
	buf      []byte // bytes of the field being collected
	need     int    // length of that field; 0 once past the page block
	skip     int64  // compressed bytes left in the current frame
	inHeader bool   // collecting the file header
	inSize   bool   // collecting a frame's size prefix
}

func newFrameGuard(r io.Reader) *frameGuard {
	return &frameGuard{r: r, need: ltx.HeaderSize, inHeader: true}
}

func (g *frameGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for b := p[:n]; len(b) > 0 && g.need > 0; {
		if g.skip > 0 {
			k := min(int64(len(b)), g.skip)
			b, g.skip = b[k:], g.skip-k
			continue
		}
		k := min(len(b), g.need-len(g.buf))
		g.buf, b = append(g.buf, b[:k]...), b[k:]
		if len(g.buf) < g.need {
			break
		}
		if ferr := g.field(); ferr != nil {
			return 0, ferr
		}
		g.buf = g.buf[:0]
	}
	return n, err
}

// field handles one complete header, page header or size prefix.
func (g *frameGuard) field() error {
	switch {
	case g.inHeader:
		// LZ4's worst case for n bytes is n + n/255 + 16.
		pageSize := binary.BigEndian.Uint32(g.buf[8:])
		g.maxSize = pageSize + pageSize/255 + 16
		g.inHeader, g.need = false, ltx.PageHeaderSize
	case g.inSize:
		size := binary.BigEndian.Uint32(g.buf)
		if size > g.maxSize {
			return fmt.Errorf("%w: page frame of %d compressed bytes, more than a page can take", ErrLTXCorrupted, size)
		}
		g.skip, g.inSize, g.need = int64(size), false, ltx.PageHeaderSize
	case bytes.Equal(g.buf, make([]byte, ltx.PageHeaderSize)):
		g.need = 0 // end of the page block
	case binary.BigEndian.Uint16(g.buf[4:])&ltx.PageHeaderFlagSize == 0:
		g.need = 0 // legacy frame: its length is not known up front
	default:
		g.inSize, g.need = true, 4
	}
	return nil
}

// readLTXHeaderFile decodes the header of a local LTX file.
func readLTXHeaderFile(path string) (ltx.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return ltx.Header{}, NewLTXError("open", path, 0, 0, 0, err)
	}
	defer func() { _ = f.Close() }()

	hdr, _, err := ltx.DecodeHeader(f)
	if err != nil {
		return ltx.Header{}, NewLTXError("decode", path, 0, 0, 0, fmt.Errorf("%w: %w", ErrLTXCorrupted, err))
	}
	return hdr, nil
}

// readLTXPage returns one page of a local LTX file, found through the page
// index at the file's tail, or nil if the file does not hold the page.
func readLTXPage(path string, pgno uint32) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}

	const tailN = 8 + ltx.TrailerSize
	if fi.Size() < ltx.HeaderSize+tailN {
		return nil, fmt.Errorf("file too short: %d bytes", fi.Size())
	}
	var buf [8]byte
	if _, err := f.ReadAt(buf[:], fi.Size()-tailN); err != nil {
		return nil, fmt.Errorf("read page index size: %w", err)
	}
	indexN := int64(binary.BigEndian.Uint64(buf[:]))
	if indexN <= 0 || indexN > fi.Size()-ltx.HeaderSize-tailN {
		return nil, fmt.Errorf("invalid page index size %d", indexN)
	}
	index := make([]byte, indexN+8)
	if _, err := f.ReadAt(index, fi.Size()-tailN-indexN); err != nil {
		return nil, fmt.Errorf("read page index: %w", err)
	}
	elems, err := ltx.DecodePageIndex(bytes.NewReader(index), 0, 0, 0)
	if err != nil {
		return nil, err
	}
	elem, ok := elems[pgno]
	if !ok {
		return nil, nil
	}
	if elem.Size <= 0 || elem.Offset < ltx.HeaderSize || elem.Offset+elem.Size > fi.Size() {
		return nil, fmt.Errorf("page index puts page %d at %d+%d, outside the file", pgno, elem.Offset, elem.Size)
	}
	frame := make([]byte, elem.Size)
	if _, err := f.ReadAt(frame, elem.Offset); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read page %d: %w", pgno, err)
	}
	hdr, data, err := ltx.DecodePageData(frame)
	if err != nil {
		return nil, fmt.Errorf("decode page %d: %w", pgno, err)
	} else if hdr.Pgno != pgno {
		return nil, fmt.Errorf("page index points page %d at page %d", pgno, hdr.Pgno)
	}
	return data, nil
}
