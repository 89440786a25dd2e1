// What every backend does with an LTX file's time: peek it from the header
// of the file being written, and store it in (and read it from) object
// metadata as RFC3339Nano text, so listings need not open the files.

package internal

import (
	"fmt"
	"io"
	"time"

	"github.com/superfly/ltx"
)

// PeekLTXTimestamp returns the timestamp in the LTX header at the start of r
// and a reader that still yields all of r.
func PeekLTXTimestamp(r io.Reader) (time.Time, io.Reader, error) {
	hdr, r, err := ltx.PeekHeader(r)
	if err != nil {
		return time.Time{}, r, fmt.Errorf("extract timestamp from LTX header: %w", err)
	}
	return time.UnixMilli(hdr.Timestamp).UTC(), r, nil
}

// FormatTimestamp is a file time as backends store it in metadata.
func FormatTimestamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

// ParseTimestamp reads a metadata timestamp written by FormatTimestamp.
func ParseTimestamp(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }
