// v3file.go decodes files of Litestream v0.3.x backups as they are stored:
// one LZ4 frame, which v0.3.x age-encrypted when it had recipients (so the
// stored bytes are age(lz4(data))).

package internal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"github.com/pierrec/lz4/v4"
)

// ErrV3Encrypted is returned for an age-encrypted v0.3.x file when no
// identity was given to decrypt it.
var ErrV3Encrypted = errors.New("v0.3.x backup file is age-encrypted; pass the age identity its replica was configured with (RestoreOptions.AgeIdentities)")

// ageMagic starts every age file (its version line).
var ageMagic = []byte("age-encryption.org/")

// OpenV3File returns the plaintext of a stored v0.3.x file read from rc:
// age-decrypted with identities when the file is encrypted, then
// LZ4-decompressed. Closing the result closes rc.
func OpenV3File(rc io.ReadCloser, identities []age.Identity) (io.ReadCloser, error) {
	br := bufio.NewReader(rc)
	head, err := br.Peek(len(ageMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		_ = rc.Close()
		return nil, fmt.Errorf("read v0.3.x file header: %w", err)
	}
	var r io.Reader = br
	if bytes.Equal(head, ageMagic) {
		if len(identities) == 0 {
			_ = rc.Close()
			return nil, ErrV3Encrypted
		}
		dr, err := age.Decrypt(br, identities...)
		if err != nil {
			_ = rc.Close()
			return nil, fmt.Errorf("age decrypt v0.3.x file: %w", err)
		}
		r = dr
	}
	return &v3FileReader{r: lz4.NewReader(newLZ4FrameGuard(r)), c: rc}, nil
}

type v3FileReader struct {
	r io.Reader
	c io.Closer
}

func (f *v3FileReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("decompress v0.3.x file: %w", err)
	}
	return n, err
}

func (f *v3FileReader) Close() error { return f.c.Close() }

// lz4FrameGuard passes an LZ4 frame through unchanged while following its
// structure (header, block sizes, end mark, checksums), and reports
// io.ErrUnexpectedEOF when the input ends anywhere but after a whole
// frame. The LZ4 reader alone takes an end of input between blocks for the
// end of the data, so a file cut at a block boundary would decode as a
// shorter file without error.
type lz4FrameGuard struct {
	r         *bufio.Reader
	pending   []byte // structure bytes read but not yet returned
	remaining int64  // block or checksum bytes to pass through
	inFrame   bool   // between a frame header and its end
	frames    int
	blockSum  bool // blocks carry a 4-byte checksum
	frameSum  bool // the frame ends with a 4-byte content checksum
}

const lz4FrameMagic = 0x184D2204

func newLZ4FrameGuard(r io.Reader) *lz4FrameGuard {
	return &lz4FrameGuard{r: bufio.NewReader(r)}
}

func (g *lz4FrameGuard) Read(p []byte) (int, error) {
	for {
		if len(g.pending) > 0 {
			n := copy(p, g.pending)
			g.pending = g.pending[n:]
			return n, nil
		}
		if g.remaining > 0 {
			if int64(len(p)) > g.remaining {
				p = p[:g.remaining]
			}
			n, err := g.r.Read(p)
			g.remaining -= int64(n)
			if errors.Is(err, io.EOF) && g.remaining > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		var err error
		if g.inFrame {
			err = g.readBlockHeader()
		} else {
			err = g.readFrameHeader()
		}
		if err != nil {
			return 0, err
		}
	}
}

func (g *lz4FrameGuard) readFrameHeader() error {
	hdr := make([]byte, 6)
	if n, err := io.ReadFull(g.r, hdr); n == 0 && errors.Is(err, io.EOF) && g.frames > 0 {
		return io.EOF // the input ends after a whole frame
	} else if err != nil {
		return fmt.Errorf("lz4 frame header: %w", io.ErrUnexpectedEOF)
	}
	if binary.LittleEndian.Uint32(hdr) != lz4FrameMagic {
		return fmt.Errorf("not an lz4 frame: magic %08x", binary.LittleEndian.Uint32(hdr))
	}
	flg := hdr[4]
	g.blockSum, g.frameSum = flg&0x10 != 0, flg&0x04 != 0
	extra := 1 // header checksum
	if flg&0x08 != 0 {
		extra += 8 // content size
	}
	if flg&0x01 != 0 {
		extra += 4 // dictionary ID
	}
	rest := make([]byte, extra)
	if _, err := io.ReadFull(g.r, rest); err != nil {
		return fmt.Errorf("lz4 frame header: %w", io.ErrUnexpectedEOF)
	}
	g.pending = append(hdr, rest...)
	g.inFrame = true
	return nil
}

func (g *lz4FrameGuard) readBlockHeader() error {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(g.r, hdr); err != nil {
		return fmt.Errorf("lz4 block header: %w", io.ErrUnexpectedEOF)
	}
	g.pending = hdr
	size := binary.LittleEndian.Uint32(hdr)
	if size == 0 { // end mark
		g.inFrame = false
		g.frames++
		if g.frameSum {
			g.remaining = 4
		}
		return nil
	}
	g.remaining = int64(size & 0x7fffffff)
	if g.blockSum {
		g.remaining += 4
	}
	return nil
}
