// Byte counters: a reader and a writer that count what passes through them,
// for the sizes of files written and the frame lengths of decoded pages.

package internal

import (
	"io"
	"sync/atomic"
)

// CountingReader counts the bytes read through it. N may be called while
// another goroutine reads, as SDK uploaders do.
type CountingReader struct {
	R io.Reader
	n atomic.Int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// N returns the number of bytes read so far.
func (c *CountingReader) N() int64 { return c.n.Load() }

// CountingWriter counts the bytes written through it.
type CountingWriter struct {
	W io.Writer
	n atomic.Int64
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// N returns the number of bytes written so far.
func (c *CountingWriter) N() int64 { return c.n.Load() }
