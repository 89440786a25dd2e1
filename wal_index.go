// SQLite's wal-index header in the -shm file: how many WAL frames SQLite
// counts as committed. Frames past that count can be valid and checksummed
// yet never committed (a writer died between writing its frames and
// publishing them, or its commit failed after the write); SQLite ignores
// them and its next writer overwrites them, so capture must stop there too.

package litestream

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
)

// walIndexHeader is the part of SQLite's WalIndexHdr capture needs.
type walIndexHeader struct {
	mxFrame uint32  // frames committed in the WAL generation below
	salts   [8]byte // that generation's salts, as in the WAL header
}

// walIndexReadTries bounds the re-reads of a header torn by a concurrent
// commit; SQLite's readers retry the same way.
const walIndexReadTries = 5

// readWALIndexHeader reads the wal-index header from the -shm file beside
// walPath. ok is false when there is no usable header (no -shm file, a
// header not initialized, or one torn on every try); callers then read the
// WAL to its last valid commit frame.
func readWALIndexHeader(walPath string) (hdr walIndexHeader, ok bool) {
	f, err := os.Open(walPath[:len(walPath)-len("-wal")] + "-shm")
	if err != nil {
		return hdr, false
	}
	defer func() { _ = f.Close() }()

	// Two copies of the 48-byte header; a writer updates the second
	// first, so equal copies with a valid checksum are a whole header.
	buf := make([]byte, 2*walIndexHeaderSize)
	for try := 0; try < walIndexReadTries; try++ {
		if _, err := io.ReadFull(io.NewSectionReader(f, 0, int64(len(buf))), buf); err != nil {
			return hdr, false
		}
		h1, h2 := buf[:walIndexHeaderSize], buf[walIndexHeaderSize:]
		if !bytes.Equal(h1, h2) || !walIndexHeaderValid(h1) {
			continue
		}
		hdr.mxFrame = binary.NativeEndian.Uint32(h1[16:])
		copy(hdr.salts[:], h1[32:40])
		return hdr, true
	}
	return hdr, false
}

// walIndexHeaderValid checks the header's version, init flag and checksum,
// which SQLite computes in native byte order over its first 40 bytes.
func walIndexHeaderValid(h []byte) bool {
	if binary.NativeEndian.Uint32(h[0:]) != walFormatVersion || h[12] == 0 {
		return false
	}
	s1, s2 := WALChecksum(binary.NativeEndian, 0, 0, h[:40])
	return s1 == binary.NativeEndian.Uint32(h[40:]) && s2 == binary.NativeEndian.Uint32(h[44:])
}

// committedFrameLimit returns how many frames of the WAL generation rd
// reads SQLite counts as committed, or -1 when the wal-index cannot say (no
// usable header). A header of another generation is a restart SQLite has
// begun and not yet written to the WAL file: it rewrites the wal-index
// first, and only once every committed frame of the old generation was
// backfilled and captured, so none of the old frames still to be read is
// committed.
func committedFrameLimit(walPath string, rd *WALReader) int {
	hdr, ok := readWALIndexHeader(walPath)
	if !ok {
		return -1
	}
	var salts [8]byte
	binary.BigEndian.PutUint32(salts[0:], rd.salt1)
	binary.BigEndian.PutUint32(salts[4:], rd.salt2)
	if hdr.salts != salts {
		return 0
	}
	return int(hdr.mxFrame)
}
