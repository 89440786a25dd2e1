package litestream

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc64"
	"io"

	"github.com/superfly/ltx"
)

// pageRunSize is how many bytes of consecutive pages pageApplier gathers
// into one write.
const pageRunSize = 1 << 20

// readBufferSize buffers each LTX file read: ltx's decoder makes three
// small reads per page.
const readBufferSize = 256 << 10

// crcISO is the table of the LTX checksums, built once.
var crcISO = crc64.MakeTable(crc64.ISO)

// pageApplier applies LTX files, in TXID order, to a database file: each
// page is written at its offset, so memory does not grow with the database
// or the files. Every file is checked as ltx's decoder checks it (file
// checksum, and post-apply checksum for snapshots), but the page index is
// hashed as it streams past instead of being loaded into a map. The file
// checksum covers what ltx's decoder hashes: raw header, page headers and
// size prefixes, uncompressed pages, then the raw index and trailer.
type pageApplier struct {
	w        io.WriterAt
	pageSize uint32
	commit   uint32 // commit of the last file applied

	// onPage may change a page after it is hashed, before it is written.
	onPage func(pgno uint32, data []byte) error

	// prev is the file applied before, which the next must continue.
	prev chainLink

	br      *bufio.Reader // reused for every file
	run     []byte        // consecutive pages not yet written, starting at runOff
	runOff  int64
	data    []byte
	zero    []byte
	fileH   hash.Hash64
	pageH   hash.Hash64
	scratch [ltx.PageHeaderSize + 4]byte
}

func newPageApplier(w io.WriterAt) *pageApplier {
	return &pageApplier{w: w, br: bufio.NewReaderSize(nil, readBufferSize), fileH: crc64.New(crcISO), pageH: crc64.New(crcISO)}
}

// apply writes the pages of the LTX file info names, refusing it before any
// page is written if its header says it is another file. Pages of earlier
// files not yet written are written first, so a later file's pages win.
func (a *pageApplier) apply(r io.Reader, info *ltx.FileInfo) (err error) {
	defer catchLTXPanic(&err)
	a.br.Reset(newFrameGuard(r))
	cr := &countReader{r: a.br}
	dec := ltx.NewDecoder(cr)
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("decode header: %w", err)
	}
	hdr := dec.Header()
	if err := checkLTXName(hdr, info); err != nil {
		return err
	} else if err := a.prev.continues(info.Level, hdr); err != nil {
		return err
	}
	growth := a.prev.growth(hdr)
	if a.pageSize == 0 {
		a.pageSize = hdr.PageSize
		a.data = make([]byte, hdr.PageSize)
		a.zero = make([]byte, hdr.PageSize)
		a.run = make([]byte, 0, max(pageRunSize/int(hdr.PageSize), 1)*int(hdr.PageSize))
	} else if hdr.PageSize != a.pageSize {
		return fmt.Errorf("page size %d of %s-%s differs from %d of earlier files", hdr.PageSize, hdr.MinTXID, hdr.MaxTXID, a.pageSize)
	}
	hdrBytes, err := hdr.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshal header: %w", err)
	}
	a.fileH.Reset()
	_, _ = a.fileH.Write(hdrBytes)

	var chksum ltx.Checksum
	if !hdr.NoChecksum() {
		chksum = ltx.ChecksumFlag
	}
	var pageHdr ltx.PageHeader
	lockPgno := hdr.LockPgno()
	for pgno, prev := uint32(1), uint32(0); ; pgno++ {
		if hdr.IsSnapshot() && pgno == lockPgno && pgno <= hdr.Commit {
			if err := a.write(pgno, a.zero); err != nil {
				return err
			}
			continue
		}
		start := cr.n
		if err := dec.DecodePage(&pageHdr, a.data); err == io.EOF {
			if hdr.IsSnapshot() && pgno <= hdr.Commit {
				return fmt.Errorf("decode page %d: %w", pgno, io.ErrUnexpectedEOF)
			}
			break
		} else if err != nil {
			return fmt.Errorf("decode page %d: %w", pgno, err)
		}
		switch {
		case hdr.IsSnapshot() && pageHdr.Pgno != pgno:
			return fmt.Errorf("decode page %d: read page %d", pgno, pageHdr.Pgno)
		case pageHdr.Pgno <= prev:
			return fmt.Errorf("decode page: page %d after page %d", pageHdr.Pgno, prev)
		case pageHdr.Pgno > hdr.Commit:
			return fmt.Errorf("decode page: page %d after commit %d", pageHdr.Pgno, hdr.Commit)
		}
		prev = pageHdr.Pgno
		growth.page(pageHdr.Pgno)
		a.hashPage(pageHdr, cr.n-start)
		if hdr.IsSnapshot() && !hdr.NoChecksum() {
			chksum = ltx.ChecksumFlag | (chksum ^ a.checksumPage(pageHdr.Pgno))
		}
		if a.onPage != nil {
			if err := a.onPage(pageHdr.Pgno, a.data); err != nil {
				return err
			}
		}
		if err := a.write(pageHdr.Pgno, a.data); err != nil {
			return err
		}
	}
	_, _ = a.fileH.Write(make([]byte, ltx.PageHeaderSize))

	// The page index and the trailer follow; all but the trailer's file
	// checksum is hashed.
	tw := &tailWriter{h: a.fileH}
	if _, err := io.Copy(tw, cr); err != nil {
		return fmt.Errorf("read page index: %w", err)
	}
	if tw.n < ltx.TrailerSize {
		return fmt.Errorf("read trailer: %w", io.ErrUnexpectedEOF)
	}
	var trailer ltx.Trailer
	if err := trailer.UnmarshalBinary(tw.tail[:]); err != nil {
		return fmt.Errorf("unmarshal trailer: %w", err)
	}
	_, _ = a.fileH.Write(tw.tail[:ltx.TrailerChecksumOffset])
	if got := ltx.ChecksumFlag | ltx.Checksum(a.fileH.Sum64()); got != trailer.FileChecksum {
		return ltx.ErrChecksumMismatch
	}
	if hdr.IsSnapshot() && !hdr.NoChecksum() && trailer.PostApplyChecksum != chksum {
		return fmt.Errorf("post-apply checksum in trailer (%s) does not match calculated checksum (%s)", trailer.PostApplyChecksum, chksum)
	} else if err := growth.err(); err != nil {
		return err
	}
	a.commit = hdr.Commit
	a.prev = chainLink{level: info.Level, hdr: hdr}
	return nil
}

// write queues a page, writing the queued run first when the page does not
// extend it.
func (a *pageApplier) write(pgno uint32, data []byte) error {
	off := int64(pgno-1) * int64(a.pageSize)
	if len(a.run) > 0 && (a.runOff+int64(len(a.run)) != off || len(a.run) == cap(a.run)) {
		if err := a.flush(); err != nil {
			return err
		}
	}
	if len(a.run) == 0 {
		a.runOff = off
	}
	a.run = append(a.run, data...)
	return nil
}

// flush writes the queued run of pages.
func (a *pageApplier) flush() error {
	if len(a.run) == 0 {
		return nil
	}
	if _, err := a.w.WriteAt(a.run, a.runOff); err != nil {
		return fmt.Errorf("write page %d: %w", a.runOff/int64(a.pageSize)+1, err)
	}
	a.run = a.run[:0]
	return nil
}

// hashPage hashes the current page as ltx's decoder does; n is the bytes
// it took in the file, from which the block size prefix is recovered.
func (a *pageApplier) hashPage(hdr ltx.PageHeader, n int64) {
	b := a.scratch[:ltx.PageHeaderSize]
	binary.BigEndian.PutUint32(b[0:], hdr.Pgno)
	binary.BigEndian.PutUint16(b[4:], hdr.Flags)
	if hdr.Flags&ltx.PageHeaderFlagSize != 0 {
		b = a.scratch[:ltx.PageHeaderSize+4]
		binary.BigEndian.PutUint32(b[ltx.PageHeaderSize:], uint32(n-ltx.PageHeaderSize-4))
	}
	_, _ = a.fileH.Write(b)
	_, _ = a.fileH.Write(a.data)
}

// checksumPage is ltx.ChecksumPage of the current page without its
// per-call hasher and allocations.
func (a *pageApplier) checksumPage(pgno uint32) ltx.Checksum {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], pgno)
	a.pageH.Reset()
	_, _ = a.pageH.Write(b[:])
	_, _ = a.pageH.Write(a.data)
	return ltx.ChecksumFlag | ltx.Checksum(a.pageH.Sum64())
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (r *countReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

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
