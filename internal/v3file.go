// v3file.go decodes files of Litestream v0.3.x backups as they are stored:
// one LZ4 frame, which v0.3.x age-encrypted when it had recipients (so the
// stored bytes are age(lz4(data))).
package internal

import (
	"bufio"
	"bytes"
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
	return &v3FileReader{r: lz4.NewReader(r), c: rc}, nil
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
