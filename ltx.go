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
	dec := ltx.NewDecoder(r)
	if err := dec.Verify(); err != nil {
		return hdr, trailer, fmt.Errorf("%w: %w", ErrLTXCorrupted, err)
	}
	return dec.Header(), dec.Trailer(), nil
}

// compactLTX merges LTX streams, oldest first, into one NoChecksum file on w.
func compactLTX(ctx context.Context, w io.Writer, rdrs []io.Reader) (err error) {
	defer catchLTXPanic(&err)
	cmp, err := ltx.NewCompactor(w, rdrs)
	if err != nil {
		return err
	}
	cmp.HeaderFlags = ltx.HeaderFlagNoChecksum
	return cmp.Compact(ctx)
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
