// The LTX decoder: reading a file a page at a time while checking it as the
// ltx package does, without loading its page index into memory, plus the
// header, page and name checks built on it.

package litestream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"os"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// tailWriter hashes everything written to it except the last TrailerSize
// bytes, which it keeps.
type tailWriter struct {
	h    hash.Hash64
	tail [ltx.TrailerSize]byte
	n    int64
}

func (w *tailWriter) Write(p []byte) (int, error) {
	buf := append(w.tail[:min(w.n, ltx.TrailerSize)], p...)
	if keep := len(buf) - ltx.TrailerSize; keep > 0 {
		_, _ = w.h.Write(buf[:keep])
		buf = buf[keep:]
	}
	copy(w.tail[:], buf)
	w.n += int64(len(p))
	return len(p), nil
}

// verifyLTX reads a whole LTX file, checking its structure and checksum,
// and returns its header and trailer.
func verifyLTX(r io.Reader) (hdr ltx.Header, trailer ltx.Trailer, err error) {
	defer catchLTXPanic(&err)
	lr := newLTXReader(r)
	if hdr, err = lr.readHeader(); err != nil {
		return hdr, trailer, fmt.Errorf("%w: decode header: %w", ErrLTXCorrupted, err)
	}
	var pageHdr ltx.PageHeader
	data := make([]byte, hdr.PageSize)
	for {
		if err := lr.readPage(&pageHdr, data); err == io.EOF {
			break
		} else if err != nil {
			return hdr, trailer, fmt.Errorf("%w: %w", ErrLTXCorrupted, err)
		}
	}
	if trailer, err = lr.readTrailer(); err != nil {
		return hdr, trailer, fmt.Errorf("%w: %w", ErrLTXCorrupted, err)
	}
	return hdr, trailer, nil
}

// ltxReader decodes an LTX file a page at a time and checks it as ltx's
// decoder does, except that the page index is hashed as it streams past:
// ltx's Decoder.Close loads it into a map of about 100 bytes per page.
type ltxReader struct {
	guard   *frameGuard
	cr      internal.CountingReader
	dec     *ltx.Decoder
	hdr     ltx.Header
	fileH   hash.Hash64
	pageH   hash.Hash64
	chksum  ltx.Checksum // post-apply checksum of a snapshot that tracks them
	prev    uint32       // last page number read
	scratch [ltx.PageHeaderSize + 4]byte
}

func newLTXReader(r io.Reader) *ltxReader {
	lr := &ltxReader{fileH: crc64.New(crcISO), pageH: crc64.New(crcISO), chksum: ltx.ChecksumFlag}
	lr.guard = newFrameGuard(r)
	lr.cr.R = lr.guard
	lr.dec = ltx.NewDecoder(&lr.cr)
	return lr
}

func (lr *ltxReader) readHeader() (ltx.Header, error) {
	if err := lr.dec.DecodeHeader(); err != nil {
		return ltx.Header{}, err
	}
	lr.hdr = lr.dec.Header()
	_, _ = lr.fileH.Write(lr.guard.header[:])
	return lr.hdr, nil
}

// readPage reads the next page, in ascending order, and returns io.EOF at
// the end of the page block.
func (lr *ltxReader) readPage(pageHdr *ltx.PageHeader, data []byte) error {
	start := lr.cr.N()
	if err := lr.dec.DecodePage(pageHdr, data); err == io.EOF {
		_, _ = lr.fileH.Write(make([]byte, ltx.PageHeaderSize))
		return io.EOF
	} else if err != nil {
		return fmt.Errorf("decode page after page %d: %w", lr.prev, err)
	}
	if pageHdr.Pgno <= lr.prev {
		return fmt.Errorf("decode page: page %d after page %d", pageHdr.Pgno, lr.prev)
	}
	lr.prev = pageHdr.Pgno
	hashFrame(lr.fileH, &lr.scratch, pageHdr.Pgno, pageHdr.Flags, lr.cr.N()-start, data)
	if lr.hdr.IsSnapshot() && !lr.hdr.NoChecksum() {
		lr.chksum = ltx.ChecksumFlag | (lr.chksum ^ checksumPage(lr.pageH, pageHdr.Pgno, data))
	}
	return nil
}

// readTrailer reads the page index and trailer once readPage has returned
// io.EOF, and checks the file checksum, and a snapshot's post-apply checksum
// when it tracks one.
func (lr *ltxReader) readTrailer() (ltx.Trailer, error) {
	trailer, err := readLTXTail(&lr.cr, lr.fileH)
	if err != nil {
		return trailer, err
	}
	if lr.hdr.IsSnapshot() && !lr.hdr.NoChecksum() && trailer.PostApplyChecksum != lr.chksum {
		return trailer, fmt.Errorf("post-apply checksum in trailer (%s) does not match calculated checksum (%s)", trailer.PostApplyChecksum, lr.chksum)
	}
	return trailer, nil
}

// readLTXTail reads what follows a page block, the page index and the
// trailer, adds all but the trailer's file checksum to h, and checks that
// checksum.
func readLTXTail(r io.Reader, h hash.Hash64) (ltx.Trailer, error) {
	var trailer ltx.Trailer
	tw := &tailWriter{h: h}
	if _, err := io.Copy(tw, r); err != nil {
		return trailer, fmt.Errorf("read page index: %w", err)
	}
	if tw.n < ltx.TrailerSize {
		return trailer, fmt.Errorf("read trailer: %w", io.ErrUnexpectedEOF)
	}
	if err := trailer.UnmarshalBinary(tw.tail[:]); err != nil {
		return trailer, fmt.Errorf("unmarshal trailer: %w", err)
	}
	_, _ = h.Write(tw.tail[:ltx.TrailerChecksumOffset])
	if got := ltx.ChecksumFlag | ltx.Checksum(h.Sum64()); got != trailer.FileChecksum {
		return trailer, ltx.ErrChecksumMismatch
	}
	return trailer, nil
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
	// header is the file header as read: its reserved bytes, which
	// ltx.Header drops, are part of the file checksum too.
	header [ltx.HeaderSize]byte
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
		copy(g.header[:], g.buf)
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
	index := bufio.NewReaderSize(io.NewSectionReader(f, fi.Size()-tailN-indexN, indexN), 64<<10)
	elem, ok, err := findPageIndexElem(index, pgno)
	if err != nil {
		return nil, err
	} else if !ok {
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

// findPageIndexElem scans a page index, which lists pages in ascending
// order, for pgno: ltx.DecodePageIndex would load the whole index into a
// map, about 100 bytes per page.
func findPageIndexElem(r io.ByteReader, pgno uint32) (elem ltx.PageIndexElem, ok bool, err error) {
	for {
		var fields [3]uint64
		for i := range fields {
			if fields[i], err = binary.ReadUvarint(r); err != nil {
				return elem, false, fmt.Errorf("read page index: %w", err)
			} else if fields[0] == 0 {
				return elem, false, nil // end of the index
			}
		}
		switch {
		case fields[0] == uint64(pgno):
			return ltx.PageIndexElem{Offset: int64(fields[1]), Size: int64(fields[2])}, true, nil
		case fields[0] > uint64(pgno):
			return elem, false, nil
		}
	}
}

// checkLTXName reports a file whose header covers other TXIDs than its name.
func checkLTXName(hdr ltx.Header, info *ltx.FileInfo) error {
	if hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID {
		return fmt.Errorf("%w: header covers %s-%s", ErrLTXCorrupted, hdr.MinTXID, hdr.MaxTXID)
	}
	return nil
}
