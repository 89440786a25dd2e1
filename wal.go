// The SQLite WAL format: its header and frames, and a reader of committed
// frames that checks salts and checksums.

package litestream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// SQLite WAL layout constants.
const (
	WALHeaderChecksumOffset      = 24
	WALFrameHeaderChecksumOffset = 16
	WALHeaderSize                = 32
	WALFrameHeaderSize           = 24
)

const walFormatVersion = 3007000

// WALReader reads committed frames of a SQLite WAL, verifying salts and the
// cumulative checksum. The first invalid frame is the logical end (io.EOF).
type WALReader struct {
	rd       io.ReaderAt
	logger   *slog.Logger
	frameN   int // index of the next frame to read
	pageSize uint32
	bo       binary.ByteOrder
	salt1    uint32
	salt2    uint32
	chksum1  uint32
	chksum2  uint32

	// frameLimit, when frameLimited, is the number of frames SQLite's wal-index
	// counts as committed; pastLimit records a valid frame beyond it.
	frameLimited bool
	frameLimit   int
	pastLimit    bool
}

// limitFrames makes frames from index n on read as the end of the WAL.
func (r *WALReader) limitFrames(n int) { r.frameLimited, r.frameLimit = true, n }

// NewWALReader reads and validates the WAL header. A short or
// checksum-invalid header returns io.EOF: there is no valid WAL.
func NewWALReader(rd io.ReaderAt, logger *slog.Logger) (*WALReader, error) {
	r := &WALReader{rd: rd, logger: logger}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	r.logger = r.logger.With(LogKeySubsystem, LogSubsystemWALReader)
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

// NewWALReaderWithOffset returns a reader that resumes at offset, a frame
// boundary after the header, continuing the checksum chain from the stored
// checksum of the frame before it. That frame must carry salt1/salt2, the
// salts of the WAL generation being resumed; otherwise the error is a
// *PrevFrameMismatchError.
func NewWALReaderWithOffset(ctx context.Context, rd io.ReaderAt, offset int64, salt1, salt2 uint32, logger *slog.Logger) (*WALReader, error) {
	if offset <= WALHeaderSize {
		return nil, fmt.Errorf("offset %d must be greater than wal header size", offset)
	}
	r, err := NewWALReader(rd, logger)
	if err != nil {
		return nil, err
	}
	frameSize := int64(r.pageSize) + WALFrameHeaderSize
	if (offset-WALHeaderSize)%frameSize != 0 {
		return nil, fmt.Errorf("unaligned wal offset %d for page size %d", offset, r.pageSize)
	}
	r.salt1, r.salt2 = salt1, salt2

	// Adopt the previous frame's stored checksum as the chain's seed.
	r.frameN = int((offset-WALHeaderSize)/frameSize) - 1
	if _, _, err := r.readFrame(ctx, make([]byte, r.pageSize), false); err != nil {
		if ctxErr := context.Cause(ctx); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, err
		}
		return nil, &PrevFrameMismatchError{Err: err}
	}
	return r, nil
}

func (r *WALReader) readHeader() error {
	hdr := make([]byte, WALHeaderSize)
	if n, err := r.rd.ReadAt(hdr, 0); n < len(hdr) {
		if err == nil || err == io.EOF {
			return io.EOF
		}
		return fmt.Errorf("read wal header: %w", err)
	}

	switch magic := binary.BigEndian.Uint32(hdr[0:]); magic {
	case 0x377f0682:
		r.bo = binary.LittleEndian
	case 0x377f0683:
		r.bo = binary.BigEndian
	default:
		return fmt.Errorf("invalid wal header magic: %x", magic)
	}
	// A checksum mismatch is a torn header write: no WAL, whatever the
	// version field says (upstream's order).
	chksum1, chksum2 := WALChecksum(r.bo, 0, 0, hdr[:WALHeaderChecksumOffset])
	if chksum1 != binary.BigEndian.Uint32(hdr[24:]) || chksum2 != binary.BigEndian.Uint32(hdr[28:]) {
		r.logger.Debug("wal header checksum mismatch, treating as empty wal")
		return io.EOF
	}
	if v := binary.BigEndian.Uint32(hdr[4:]); v != walFormatVersion {
		return fmt.Errorf("unsupported wal version: %d", v)
	}

	r.pageSize = binary.BigEndian.Uint32(hdr[8:])
	if r.pageSize == 1 {
		r.pageSize = 65536
	}
	if r.pageSize < 512 || r.pageSize > 65536 || r.pageSize&(r.pageSize-1) != 0 {
		return fmt.Errorf("invalid wal page size: %d", r.pageSize)
	}
	r.salt1 = binary.BigEndian.Uint32(hdr[16:])
	r.salt2 = binary.BigEndian.Uint32(hdr[20:])
	r.chksum1, r.chksum2 = chksum1, chksum2
	return nil
}

// PageSize returns the page size from the WAL header.
func (r *WALReader) PageSize() uint32 { return r.pageSize }

// Offset returns the byte offset of the last frame read, 0 if none.
func (r *WALReader) Offset() int64 {
	if r.frameN == 0 {
		return 0
	}
	return r.frameOffset(r.frameN - 1)
}

func (r *WALReader) frameSize() int64 { return int64(r.pageSize) + WALFrameHeaderSize }

func (r *WALReader) frameOffset(i int) int64 { return WALHeaderSize + int64(i)*r.frameSize() }

// salts returns the salts frames must carry.
func (r *WALReader) salts() [2]uint32 { return [2]uint32{r.salt1, r.salt2} }

// ReadFrame reads the next frame into data, which must be page-sized. It
// returns io.EOF at the logical end of the WAL.
func (r *WALReader) ReadFrame(ctx context.Context, data []byte) (pgno, commit uint32, err error) {
	return r.readFrame(ctx, data, true)
}

func (r *WALReader) readFrame(ctx context.Context, data []byte, verifyChecksum bool) (pgno, commit uint32, err error) {
	if err := context.Cause(ctx); err != nil {
		return 0, 0, err
	}
	if uint32(len(data)) != r.pageSize {
		return 0, 0, fmt.Errorf("wal frame buffer is %d bytes, page size is %d", len(data), r.pageSize)
	}

	offset := r.frameOffset(r.frameN)
	hdr := make([]byte, WALFrameHeaderSize)
	if n, err := r.rd.ReadAt(hdr, offset); n < len(hdr) {
		if err == nil || err == io.EOF {
			return 0, 0, io.EOF
		}
		return 0, 0, fmt.Errorf("read wal frame header at %d: %w", offset, err)
	}
	if n, err := r.rd.ReadAt(data, offset+WALFrameHeaderSize); n < len(data) {
		if err == nil || err == io.EOF {
			return 0, 0, io.EOF
		}
		return 0, 0, fmt.Errorf("read wal frame data at %d: %w", offset, err)
	}

	if binary.BigEndian.Uint32(hdr[8:]) != r.salt1 || binary.BigEndian.Uint32(hdr[12:]) != r.salt2 {
		return 0, 0, io.EOF
	}

	stored1, stored2 := binary.BigEndian.Uint32(hdr[16:]), binary.BigEndian.Uint32(hdr[20:])
	if verifyChecksum {
		c1, c2 := WALChecksum(r.bo, r.chksum1, r.chksum2, hdr[:8])
		c1, c2 = WALChecksum(r.bo, c1, c2, data)
		if c1 != stored1 || c2 != stored2 {
			return 0, 0, io.EOF
		}
	}
	if r.frameLimited && r.frameN >= r.frameLimit {
		r.pastLimit = true
		return 0, 0, io.EOF
	}
	r.chksum1, r.chksum2 = stored1, stored2
	r.frameN++

	return binary.BigEndian.Uint32(hdr[0:]), binary.BigEndian.Uint32(hdr[4:]), nil
}

// PageMap reads to the end of the WAL and maps each page to the offset of
// its newest committed frame. maxOffset is the end of the last committed
// frame and commit the database size in pages after it; pages beyond commit
// (a shrink) are dropped.
func (r *WALReader) PageMap(ctx context.Context) (m map[uint32]int64, maxOffset int64, commit uint32, err error) {
	m, maxOffset, commit, _, err = r.pageMap(ctx, 0)
	return m, maxOffset, commit, err
}

// pageMap is PageMap stopping at the first commit boundary at least limit
// bytes past the start (limit 0 = none); limited reports such a stop.
func (r *WALReader) pageMap(ctx context.Context, limit int64) (m map[uint32]int64, maxOffset int64, commit uint32, limited bool, err error) {
	m = make(map[uint32]int64)
	txMap := make(map[uint32]int64)
	start := r.frameOffset(r.frameN)
	data := make([]byte, r.pageSize)
	for {
		pgno, fcommit, err := r.ReadFrame(ctx, data)
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, 0, 0, false, err
		}
		offset := r.Offset()
		txMap[pgno] = offset
		if fcommit == 0 {
			continue
		}

		for pgno, off := range txMap {
			m[pgno] = off
		}
		clear(txMap)
		commit = fcommit
		if end := offset + r.frameSize(); end > maxOffset {
			maxOffset = end
		}
		if limit > 0 && maxOffset-start >= limit {
			limited = true
			break
		}
	}

	for pgno := range m {
		if pgno > commit {
			delete(m, pgno)
		}
	}
	if len(m) == 0 {
		return m, 0, 0, limited, nil
	}
	return m, maxOffset, commit, limited, nil
}

// FrameSaltsUntil returns the distinct salt pairs in frame headers from the
// first frame on, stopping after the first frame whose salts equal until.
// Checksums are not checked.
func (r *WALReader) FrameSaltsUntil(ctx context.Context, until [2]uint32) (map[[2]uint32]struct{}, error) {
	m := make(map[[2]uint32]struct{})
	hdr := make([]byte, WALFrameHeaderSize)
	for i := 0; ; i++ {
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		if n, err := r.rd.ReadAt(hdr, r.frameOffset(i)); n < len(hdr) {
			if err == nil || err == io.EOF {
				return m, nil
			}
			return nil, fmt.Errorf("read wal frame header: %w", err)
		}
		salts := [2]uint32{binary.BigEndian.Uint32(hdr[8:]), binary.BigEndian.Uint32(hdr[12:])}
		m[salts] = struct{}{}
		if salts == until {
			return m, nil
		}
	}
}

// WALChecksum computes SQLite's running WAL checksum over b, whose length
// must be a multiple of 8, continuing from (s0, s1).
func WALChecksum(bo binary.ByteOrder, s0, s1 uint32, b []byte) (uint32, uint32) {
	if len(b)%8 != 0 {
		panic("litestream: wal checksum input must be a multiple of 8 bytes")
	}
	for i := 0; i < len(b); i += 8 {
		s0 += bo.Uint32(b[i:]) + s1
		s1 += bo.Uint32(b[i+4:]) + s0
	}
	return s0, s1
}

// Checksum is WALChecksum, under upstream's other name.
func Checksum(bo binary.ByteOrder, s0, s1 uint32, b []byte) (uint32, uint32) {
	return WALChecksum(bo, s0, s1, b)
}
