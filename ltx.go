// The private LTX codec: ltx_decode.go reads and checks files, ltx_encode.go
// writes them; this file holds what both share (checksums, the panic guard
// around the ltx package) and the merge of several files into one.

package litestream

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc64"
	"io"

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
	// Dated by its newest commit: the latest input time, not the last
	// input's, which a clock stepped back can make earlier than a commit
	// the file holds (a restore to a time would then take that commit).
	timestamp := maxHdr.Timestamp
	for _, in := range inputs {
		timestamp = max(timestamp, in.hdr.Timestamp)
	}
	enc := newLTXEncoder(w, spillDir)
	defer enc.release()
	if err := enc.EncodeHeader(ltx.Header{
		Version:          ltx.Version,
		Flags:            ltx.HeaderFlagNoChecksum,
		PageSize:         minHdr.PageSize,
		Commit:           maxHdr.Commit,
		MinTXID:          minHdr.MinTXID,
		MaxTXID:          maxHdr.MaxTXID,
		Timestamp:        timestamp,
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

// crcISO is the table of the LTX checksums, built once.
var crcISO = crc64.MakeTable(crc64.ISO)
