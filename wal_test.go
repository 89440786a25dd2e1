// Tests of the WAL header checks and their order.
package litestream_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
)

// walHeader returns a little-endian-checksum WAL header with the given
// version, its checksum made valid or not.
func walHeader(version uint32, validChecksum bool) []byte {
	hdr := make([]byte, litestream.WALHeaderSize)
	binary.BigEndian.PutUint32(hdr[0:], 0x377f0682)
	binary.BigEndian.PutUint32(hdr[4:], version)
	binary.BigEndian.PutUint32(hdr[8:], 4096)
	binary.BigEndian.PutUint32(hdr[16:], 0x11111111)
	binary.BigEndian.PutUint32(hdr[20:], 0x22222222)
	c1, c2 := litestream.WALChecksum(binary.LittleEndian, 0, 0, hdr[:litestream.WALHeaderChecksumOffset])
	if !validChecksum {
		c1++
	}
	binary.BigEndian.PutUint32(hdr[24:], c1)
	binary.BigEndian.PutUint32(hdr[28:], c2)
	return hdr
}

// A header whose checksum fails is a torn write (as upstream reads it): no
// WAL, io.EOF, before the version is looked at. A valid header with another
// version is an error.
func TestNewWALReader_HeaderCheckOrder(t *testing.T) {
	if _, err := litestream.NewWALReader(bytes.NewReader(walHeader(3007000, true)), nil); err != nil {
		t.Fatalf("valid header: %v", err)
	}
	if _, err := litestream.NewWALReader(bytes.NewReader(walHeader(3007000, false)), nil); err != io.EOF {
		t.Fatalf("bad checksum: err = %v, want io.EOF", err)
	}
	if _, err := litestream.NewWALReader(bytes.NewReader(walHeader(42, false)), nil); err != io.EOF {
		t.Fatalf("bad checksum and version: err = %v, want io.EOF", err)
	}
	if _, err := litestream.NewWALReader(bytes.NewReader(walHeader(42, true)), nil); err == nil || !strings.Contains(err.Error(), "unsupported wal version") {
		t.Fatalf("bad version: err = %v, want unsupported wal version", err)
	}
}
