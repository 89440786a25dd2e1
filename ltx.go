package litestream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc64"
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
	cr      countReader
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
	lr.cr.r = newFrameGuard(r)
	lr.dec = ltx.NewDecoder(&lr.cr)
	return lr
}

func (lr *ltxReader) readHeader() (ltx.Header, error) {
	if err := lr.dec.DecodeHeader(); err != nil {
		return ltx.Header{}, err
	}
	lr.hdr = lr.dec.Header()
	b, err := lr.hdr.MarshalBinary()
	if err != nil {
		return lr.hdr, fmt.Errorf("marshal header: %w", err)
	}
	_, _ = lr.fileH.Write(b)
	return lr.hdr, nil
}

// readPage reads the next page, in ascending order, and returns io.EOF at
// the end of the page block.
func (lr *ltxReader) readPage(pageHdr *ltx.PageHeader, data []byte) error {
	start := lr.cr.n
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
	hashFrame(lr.fileH, &lr.scratch, pageHdr.Pgno, pageHdr.Flags, lr.cr.n-start, data)
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

// hashFrame adds a page frame to a file checksum as ltx's decoder does:
// page header, the block size prefix when flagged (the bytes the frame took
// in the file give it back), then the uncompressed page.
func hashFrame(h hash.Hash64, scratch *[ltx.PageHeaderSize + 4]byte, pgno uint32, flags uint16, frameN int64, data []byte) {
	b := scratch[:ltx.PageHeaderSize]
	binary.BigEndian.PutUint32(b[0:], pgno)
	binary.BigEndian.PutUint16(b[4:], flags)
	if flags&ltx.PageHeaderFlagSize != 0 {
		b = scratch[:ltx.PageHeaderSize+4]
		binary.BigEndian.PutUint32(b[ltx.PageHeaderSize:], uint32(frameN-ltx.PageHeaderSize-4))
	}
	_, _ = h.Write(b)
	_, _ = h.Write(data)
}

// checksumPage is ltx.ChecksumPage with a reused hasher, and without its
// allocations.
func checksumPage(h hash.Hash64, pgno uint32, data []byte) ltx.Checksum {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], pgno)
	h.Reset()
	_, _ = h.Write(b[:])
	_, _ = h.Write(data)
	return ltx.ChecksumFlag | ltx.Checksum(h.Sum64())
}

// compactLTX merges LTX streams, oldest first, into one NoChecksum file on
// w, as ltx.Compactor does and byte for byte like it, but in memory that
// does not grow with the files: ltx's compactor loads each input's page
// index into a map and keeps one for its output. spillDir takes the
// output's index when it is large ("" for os.TempDir).
func compactLTX(ctx context.Context, w io.Writer, rdrs []io.Reader, spillDir string) (err error) {
	defer catchLTXPanic(&err)
	if len(rdrs) == 0 {
		return fmt.Errorf("at least one input reader required")
	}
	type input struct {
		lr   *ltxReader
		hdr  ltx.Header
		page ltx.PageHeader // zero once the input's pages are all read
		data []byte
		done bool
	}
	inputs := make([]*input, len(rdrs))
	for i, rd := range rdrs {
		in := &input{lr: newLTXReader(rd)}
		if in.hdr, err = in.lr.readHeader(); err != nil {
			return fmt.Errorf("decode header for input %d: %w", i, err)
		}
		if i > 0 {
			prev := inputs[i-1].hdr
			if prev.PageSize != in.hdr.PageSize {
				return fmt.Errorf("input files have mismatched page sizes: %d != %d", prev.PageSize, in.hdr.PageSize)
			} else if !ltx.IsContiguous(prev.MaxTXID, in.hdr.MinTXID, in.hdr.MaxTXID) {
				kind := "gap"
				if in.hdr.MinTXID <= prev.MaxTXID+1 {
					kind = "overlap"
				}
				return fmt.Errorf("non-contiguous transaction ids in input files: (%s,%s) -> (%s,%s) (%s)", prev.MinTXID, prev.MaxTXID, in.hdr.MinTXID, in.hdr.MaxTXID, kind)
			}
		}
		in.data = make([]byte, in.hdr.PageSize)
		inputs[i] = in
	}

	minHdr, maxHdr := inputs[0].hdr, inputs[len(inputs)-1].hdr
	enc := newLTXEncoder(w, spillDir)
	defer enc.release()
	if err := enc.EncodeHeader(ltx.Header{
		Version:          ltx.Version,
		Flags:            ltx.HeaderFlagNoChecksum,
		PageSize:         minHdr.PageSize,
		Commit:           maxHdr.Commit,
		MinTXID:          minHdr.MinTXID,
		MaxTXID:          maxHdr.MaxTXID,
		Timestamp:        maxHdr.Timestamp,
		PreApplyChecksum: minHdr.PreApplyChecksum,
	}); err != nil {
		return fmt.Errorf("write header: %w", err)
	}

	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := context.Cause(ctx); err != nil {
				return err
			}
		}
		// Each input holds its next page; the lowest page number goes out,
		// from the newest input that has it.
		var pgno uint32
		for i, in := range inputs {
			if in.page.Pgno == 0 && !in.done {
				if err := in.lr.readPage(&in.page, in.data); err == io.EOF {
					in.done = true
				} else if err != nil {
					return fmt.Errorf("read page header %d: %w", i, err)
				}
			}
			if in.page.Pgno != 0 && (pgno == 0 || in.page.Pgno < pgno) {
				pgno = in.page.Pgno
			}
		}
		if pgno == 0 {
			break
		}
		written := false
		for i := len(inputs) - 1; i >= 0; i-- {
			in := inputs[i]
			if in.page.Pgno != pgno {
				continue
			}
			hdr := in.page
			in.page = ltx.PageHeader{}
			if written || pgno > maxHdr.Commit {
				continue
			}
			written = true
			if err := enc.EncodePage(hdr, in.data); err != nil {
				return fmt.Errorf("copy page %d header: %w", pgno, err)
			}
		}
	}

	var trailer ltx.Trailer
	for i, in := range inputs {
		if trailer, err = in.lr.readTrailer(); err != nil {
			return fmt.Errorf("close reader %d: %w", i, err)
		}
	}
	enc.SetPostApplyChecksum(trailer.PostApplyChecksum)
	if err := enc.Close(); err != nil {
		return fmt.Errorf("close encoder: %w", err)
	}
	return nil
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
