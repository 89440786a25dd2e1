// Applying a restore plan's LTX files to the output file: a pipeline that
// decodes, hashes and writes pages on separate cores, and the writer that
// sends long aligned runs around the page cache.

package litestream

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// pageRunSize is how many bytes of pages one batch holds: consecutive
// pages of a batch go out in one write.
const pageRunSize = 1 << 20

// pageBatchCount is how many batches at most circulate between decoding,
// hashing and writing; the applier's memory is this many runs.
const pageBatchCount = 4

// readBufferSize buffers each LTX file read: ltx's decoder makes three
// small reads per page.
const readBufferSize = 256 << 10

// directAlign is the memory, offset and length alignment that O_DIRECT
// writes need on any device.
const directAlign = 4096

// pageApplier applies LTX files, in TXID order, to a database file: each
// page is written at its offset, so memory does not grow with the database
// or the files. Every file is checked as ltx's decoder checks it (file
// checksum, and post-apply checksum for snapshots), but the page index is
// hashed as it streams past instead of being loaded into a map. The file
// checksum covers what ltx's decoder hashes: raw header, page headers and
// size prefixes, uncompressed pages, then the raw index and trailer.
//
// A file's pages go through three goroutines, so that decoding (LZ4 and
// ltx's own hash), our hashes and the writes overlap on separate cores:
// the caller decodes pages straight into batches, a hasher hashes them in
// order, and a writer writes them. apply returns once every page of the
// file is written and the file checked, and no goroutine outlives it.
type pageApplier struct {
	w        io.WriterAt
	pageSize uint32
	commit   uint32 // commit of the last file applied

	// onPage may change a page after it is hashed, before it is written.
	onPage func(pgno uint32, data []byte) error

	// prev is the file applied before, which the next must continue.
	prev chainLink

	br      *bufio.Reader // reused for every file
	batches []*pageBatch  // allocated as needed, so small files take little memory
	fileH   hash.Hash64
	pageH   hash.Hash64
	scratch [ltx.PageHeaderSize + 4]byte
}

// pageBatch is a run of decoded pages: page i of pages is at
// buf[i*pageSize:], and consecutive page numbers are consecutive in buf.
type pageBatch struct {
	buf   []byte
	pages []batchPage
}

// batchPage is a page of a batch, with what the file checksum needs of its
// frame.
type batchPage struct {
	pgno  uint32
	flags uint16
	n     int64 // bytes of the frame in the file; zero for the snapshot's lock page, which the file does not hold
}

func newPageApplier(w io.WriterAt) *pageApplier {
	return &pageApplier{w: w, br: bufio.NewReaderSize(nil, readBufferSize), fileH: crc64.New(crcISO), pageH: crc64.New(crcISO)}
}

// apply writes the pages of the LTX file info names, refusing it before any
// page is written if its header says it is another file. Pages of earlier
// files are all written before it starts, so a later file's pages win.
func (a *pageApplier) apply(r io.Reader, info *ltx.FileInfo) (err error) {
	defer catchLTXPanic(&err)
	guard := newFrameGuard(r)
	a.br.Reset(guard)
	cr := &internal.CountingReader{R: a.br}
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
	} else if hdr.PageSize != a.pageSize {
		return fmt.Errorf("page size %d of %s-%s differs from %d of earlier files", hdr.PageSize, hdr.MinTXID, hdr.MaxTXID, a.pageSize)
	}
	a.fileH.Reset()
	_, _ = a.fileH.Write(guard.header[:]) // as read: reserved bytes included

	p := a.startPipeline(hdr)
	defer func() {
		// On early returns and panics too, so no goroutine outlives apply.
		if perr := p.finish(); err == nil {
			err = perr
		}
	}()
	if err := a.decodePages(dec, hdr, cr, p, &growth); err != nil {
		return err
	}
	if err := p.finish(); err != nil {
		return err
	}
	_, _ = a.fileH.Write(make([]byte, ltx.PageHeaderSize))

	trailer, err := readLTXTail(cr, a.fileH)
	if err != nil {
		return err
	}
	if hdr.IsSnapshot() && !hdr.NoChecksum() && trailer.PostApplyChecksum != p.chksum {
		return fmt.Errorf("post-apply checksum in trailer (%s) does not match calculated checksum (%s)", trailer.PostApplyChecksum, p.chksum)
	} else if err := growth.err(); err != nil {
		return err
	}
	a.commit = hdr.Commit
	a.prev = chainLink{level: info.Level, hdr: hdr}
	return nil
}

// decodePages decodes the file's page block into batches and sends them
// down the pipeline. A snapshot's lock page, which the file leaves out, is
// written as zeros.
func (a *pageApplier) decodePages(dec *ltx.Decoder, hdr ltx.Header, cr *internal.CountingReader, p *pagePipeline, growth *growthCheck) error {
	ps := int(a.pageSize)
	b := p.next()
	if b == nil {
		return nil // the pipeline failed; finish reports why
	}
	var pageHdr ltx.PageHeader
	lockPgno := hdr.LockPgno()
	for pgno, prev := uint32(1), uint32(0); ; pgno++ {
		if len(b.pages) == cap(b.pages) {
			p.send(b)
			if b = p.next(); b == nil {
				return nil
			}
		}
		slot := b.buf[len(b.pages)*ps : (len(b.pages)+1)*ps]
		if hdr.IsSnapshot() && pgno == lockPgno && pgno <= hdr.Commit {
			clear(slot)
			b.pages = append(b.pages, batchPage{pgno: pgno})
			continue
		}
		start := cr.N()
		if err := dec.DecodePage(&pageHdr, slot); err == io.EOF {
			if hdr.IsSnapshot() && pgno <= hdr.Commit {
				return fmt.Errorf("decode page %d: %w", pgno, io.ErrUnexpectedEOF)
			}
			break
		} else if err != nil {
			return fmt.Errorf("decode page %d: %w", pgno, err)
		}
		var err error
		switch {
		case hdr.IsSnapshot() && pageHdr.Pgno != pgno:
			err = fmt.Errorf("decode page %d: read page %d", pgno, pageHdr.Pgno)
		case pageHdr.Pgno <= prev:
			err = fmt.Errorf("decode page: page %d after page %d", pageHdr.Pgno, prev)
		case pageHdr.Pgno > hdr.Commit:
			err = fmt.Errorf("decode page: page %d after commit %d", pageHdr.Pgno, hdr.Commit)
		}
		if err != nil {
			return err
		}
		prev = pageHdr.Pgno
		growth.page(pageHdr.Pgno)
		b.pages = append(b.pages, batchPage{pgno: pageHdr.Pgno, flags: pageHdr.Flags, n: cr.N() - start})
	}
	p.send(b)
	return nil
}

// pagePipeline carries one file's batches from the decoding caller to the
// hasher and on to the writer; every batch returns to free, whatever
// fails, so the caller never waits forever.
type pagePipeline struct {
	a        *pageApplier
	hdr      ltx.Header
	free     chan *pageBatch
	decoded  chan *pageBatch
	hashed   chan *pageBatch
	done     chan struct{}
	failed   atomic.Bool // set on the first error; later batches are skipped
	hashErr  error       // set by the hasher before it closes hashed
	writeErr error       // set by the writer before it closes done
	chksum   ltx.Checksum
	finished bool
}

func (a *pageApplier) startPipeline(hdr ltx.Header) *pagePipeline {
	p := &pagePipeline{
		a:       a,
		hdr:     hdr,
		free:    make(chan *pageBatch, pageBatchCount),
		decoded: make(chan *pageBatch, pageBatchCount),
		hashed:  make(chan *pageBatch, pageBatchCount),
		done:    make(chan struct{}),
	}
	if !hdr.NoChecksum() {
		p.chksum = ltx.ChecksumFlag
	}
	for _, b := range a.batches {
		b.pages = b.pages[:0] // a failed file may have left some
		p.free <- b
	}
	go p.hash()
	go p.write()
	return p
}

// next returns an empty batch, a new one while there are fewer than
// pageBatchCount, or nil once a stage has failed.
func (p *pagePipeline) next() *pageBatch {
	var b *pageBatch
	select {
	case b = <-p.free:
	default:
		if len(p.a.batches) < pageBatchCount {
			perBatch := max(pageRunSize/int(p.a.pageSize), 1)
			b = &pageBatch{buf: alignedBytes(perBatch * int(p.a.pageSize)), pages: make([]batchPage, 0, perBatch)}
			p.a.batches = append(p.a.batches, b)
		} else {
			b = <-p.free
		}
	}
	if p.failed.Load() {
		p.free <- b
		return nil
	}
	return b
}

func (p *pagePipeline) send(b *pageBatch) {
	if len(b.pages) == 0 {
		p.recycle(b)
		return
	}
	p.decoded <- b
}

func (p *pagePipeline) recycle(b *pageBatch) {
	b.pages = b.pages[:0]
	p.free <- b
}

// finish waits until every batch sent is hashed and written, and returns
// the first error of the hasher or the writer.
func (p *pagePipeline) finish() error {
	if !p.finished {
		p.finished = true
		close(p.decoded)
		<-p.done
	}
	if p.hashErr != nil {
		return p.hashErr
	}
	return p.writeErr
}

// hash adds each page to the file checksum, and for snapshots with
// checksums to the post-apply checksum, then lets onPage change it.
func (p *pagePipeline) hash() {
	defer close(p.hashed)
	a, ps := p.a, int(p.a.pageSize)
	tracked := p.hdr.IsSnapshot() && !p.hdr.NoChecksum()
	for b := range p.decoded {
		if p.failed.Load() {
			p.recycle(b)
			continue
		}
		for i, pg := range b.pages {
			if pg.n == 0 {
				continue
			}
			data := b.buf[i*ps : (i+1)*ps]
			hashFrame(a.fileH, &a.scratch, pg.pgno, pg.flags, pg.n, data)
			if tracked {
				p.chksum = ltx.ChecksumFlag | (p.chksum ^ checksumPage(a.pageH, pg.pgno, data))
			}
			if a.onPage != nil {
				if err := a.onPage(pg.pgno, data); err != nil {
					p.hashErr = err
					p.failed.Store(true)
					break
				}
			}
		}
		if p.failed.Load() {
			p.recycle(b)
			continue
		}
		p.hashed <- b
	}
}

// write writes each batch's runs of consecutive pages, one write per run.
func (p *pagePipeline) write() {
	defer close(p.done)
	ps := int64(p.a.pageSize)
	for b := range p.hashed {
		if !p.failed.Load() {
			if err := p.writeBatch(b, ps); err != nil {
				p.writeErr = err
				p.failed.Store(true)
			}
		}
		p.recycle(b)
	}
}

func (p *pagePipeline) writeBatch(b *pageBatch, ps int64) error {
	for i := 0; i < len(b.pages); {
		j := i + 1
		for j < len(b.pages) && b.pages[j].pgno == b.pages[j-1].pgno+1 {
			j++
		}
		off := int64(b.pages[i].pgno-1) * ps
		if _, err := p.a.w.WriteAt(b.buf[int64(i)*ps:int64(j)*ps], off); err != nil {
			return fmt.Errorf("write page %d: %w", b.pages[i].pgno, err)
		}
		i = j
	}
	return nil
}

// alignedBytes returns n bytes starting at a directAlign boundary.
func alignedBytes(n int) []byte {
	b := make([]byte, n+directAlign)
	off := (directAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign)) % directAlign
	return b[off : off+n : off+n]
}

// directMinRun is the shortest run written with O_DIRECT: a direct write
// waits for the device, which the scattered pages of later files would
// each pay, so short runs go through the page cache.
const directMinRun = 256 << 10

// restoreWriter writes the restore file. Long aligned runs, such as the
// snapshot's, go through a second descriptor opened with O_DIRECT where
// the system has one: the data must reach the disk before the rename
// anyway, and going around the page cache saves a copy and the cost of
// filling the cache with a whole database. Other runs, and every run once
// the file system refuses a direct write, go through the ordinary
// descriptor; the kernel keeps the two coherent.
type restoreWriter struct {
	f      *os.File
	direct directWriter // nil without O_DIRECT
}

// directWriter is the O_DIRECT descriptor of the restore file.
type directWriter interface {
	io.WriterAt
	io.Closer
}

func (w *restoreWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.direct != nil && len(p) >= directMinRun && off%directAlign == 0 && len(p)%directAlign == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0 {
		n, err := w.direct.WriteAt(p, off)
		if !errors.Is(err, syscall.EINVAL) {
			return n, err
		}
		w.closeDirect()
	}
	return w.f.WriteAt(p, off)
}

func (w *restoreWriter) closeDirect() {
	if w.direct != nil {
		_ = w.direct.Close()
		w.direct = nil
	}
}
