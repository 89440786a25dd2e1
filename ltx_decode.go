package litestream

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc64"
	"io"

	"github.com/superfly/ltx"
)

// decodeSnapshotTo writes the database a snapshot LTX file holds to w. It
// checks the same things as ltx's DecodeDatabaseTo, but hashes the page
// index as it streams past instead of loading it into a map, so memory does
// not grow with the database. The file checksum covers what ltx's decoder
// hashes: raw header, page headers and size prefixes, uncompressed pages,
// then the raw index and trailer.
func decodeSnapshotTo(r io.Reader, w io.Writer) (err error) {
	defer catchLTXPanic(&err)
	cr := &countReader{r: newFrameGuard(r)}
	h := crc64.New(crc64.MakeTable(crc64.ISO))
	dec := ltx.NewDecoder(cr)
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("decode header: %w", err)
	}
	hdr := dec.Header()
	hdrBytes, err := hdr.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshal header: %w", err)
	}
	_, _ = h.Write(hdrBytes)
	if !hdr.IsSnapshot() {
		return fmt.Errorf("cannot decode non-snapshot LTX file %s-%s to a database", hdr.MinTXID, hdr.MaxTXID)
	}

	var pageHdr ltx.PageHeader
	data := make([]byte, hdr.PageSize)
	zero := make([]byte, hdr.PageSize)
	lockPgno := hdr.LockPgno()
	var chksum ltx.Checksum
	if !hdr.NoChecksum() {
		chksum = ltx.ChecksumFlag
	}
	for pgno := uint32(1); pgno <= hdr.Commit; pgno++ {
		page := zero
		if pgno != lockPgno {
			start := cr.n
			if err := dec.DecodePage(&pageHdr, data); err != nil {
				return fmt.Errorf("decode page %d: %w", pgno, err)
			} else if pageHdr.Pgno != pgno {
				return fmt.Errorf("decode page %d: read page %d", pgno, pageHdr.Pgno)
			}
			hashPage(h, pageHdr, cr.n-start, data)
			page = data
			if !hdr.NoChecksum() {
				chksum = ltx.ChecksumFlag | (chksum ^ ltx.ChecksumPage(pgno, data))
			}
		}
		if _, err := w.Write(page); err != nil {
			return fmt.Errorf("write page %d: %w", pgno, err)
		}
	}
	if err := dec.DecodePage(&pageHdr, data); err == nil {
		return fmt.Errorf("unexpected page %d after commit %d", pageHdr.Pgno, hdr.Commit)
	} else if err != io.EOF {
		return fmt.Errorf("decode end of pages: %w", err)
	}
	_, _ = h.Write(make([]byte, ltx.PageHeaderSize))

	// The page index and the trailer follow; all but the trailer's file
	// checksum is hashed.
	tw := &tailWriter{h: h}
	if _, err := io.Copy(tw, r); err != nil {
		return fmt.Errorf("read page index: %w", err)
	}
	if tw.n < ltx.TrailerSize {
		return fmt.Errorf("read trailer: %w", io.ErrUnexpectedEOF)
	}
	var trailer ltx.Trailer
	if err := trailer.UnmarshalBinary(tw.tail[:]); err != nil {
		return fmt.Errorf("unmarshal trailer: %w", err)
	}
	_, _ = h.Write(tw.tail[:ltx.TrailerChecksumOffset])
	if got := ltx.ChecksumFlag | ltx.Checksum(h.Sum64()); got != trailer.FileChecksum {
		return ltx.ErrChecksumMismatch
	}
	if !hdr.NoChecksum() && trailer.PostApplyChecksum != chksum {
		return fmt.Errorf("post-apply checksum in trailer (%s) does not match calculated checksum (%s)", trailer.PostApplyChecksum, chksum)
	}
	return nil
}

// hashPage hashes a page as ltx's decoder does; n is the bytes it took in
// the file, from which the block size prefix is recovered.
func hashPage(h hash.Hash64, hdr ltx.PageHeader, n int64, data []byte) {
	b, _ := hdr.MarshalBinary()
	_, _ = h.Write(b)
	if hdr.Flags&ltx.PageHeaderFlagSize != 0 {
		var size [4]byte
		binary.BigEndian.PutUint32(size[:], uint32(n-ltx.PageHeaderSize-4))
		_, _ = h.Write(size[:])
	}
	_, _ = h.Write(data)
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
