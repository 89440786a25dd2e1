// Package faultclient wraps a litestream.ReplicaClient with injected
// failures, for reliability tests: errors on any call, calls that hang until
// their context ends or a deadline passes, short reads, writes that fail
// half-way or land but report an error, slow calls, and files hidden from
// listings (as an eventually consistent backend, or a write acknowledged
// late, shows them). Faults are drawn from a seeded random source so that a
// failing run can be replayed.
package faultclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// ErrInjected is returned (wrapped) by every injected failure.
var ErrInjected = errors.New("injected fault")

// Kind names a fault.
type Kind string

// Faults, each drawn with its own rate in Config.
const (
	KindError     Kind = "error"      // the call fails before doing anything
	KindTimeout   Kind = "timeout"    // the call hangs, then fails
	KindSlow      Kind = "slow"       // the call is delayed, then proceeds
	KindShortRead Kind = "short-read" // an opened file ends early
	KindHalfWrite Kind = "half-write" // a write reads part of its input, then fails; nothing is stored
	KindLostAck   Kind = "lost-ack"   // a write is stored, then reported as failed
)

// Config sets the probability, from 0 to 1, of each fault per call. At most
// one fault is drawn per call, in the order of the fields.
type Config struct {
	// Seed seeds the random source.
	Seed int64

	// ErrorRate applies to every method except Type and SetLogger.
	ErrorRate float64

	// TimeoutRate makes a call block until its context ends or Timeout
	// passes, then fail. Timeout defaults to 100ms.
	TimeoutRate float64
	Timeout     time.Duration

	// SlowRate delays a call by up to SlowDelay (default 50ms).
	SlowRate  float64
	SlowDelay time.Duration

	// ShortReadRate applies to OpenLTXFile: the reader ends early, half of
	// the time silently (io.EOF), otherwise with an error.
	ShortReadRate float64

	// HalfWriteRate and LostAckRate apply to WriteLTXFile.
	HalfWriteRate float64
	LostAckRate   float64
}

// Client is a ReplicaClient that injects faults into calls to the wrapped
// client. It is safe for concurrent use.
type Client struct {
	litestream.ReplicaClient

	cfg Config

	mu      sync.Mutex // guards rng, enabled, counts, hidden
	rng     *rand.Rand
	enabled bool
	counts  map[Kind]int
	hidden  map[fileKey]bool
}

// fileKey names a file by level and TXID range.
type fileKey struct {
	level            int
	minTXID, maxTXID ltx.TXID
}

var _ litestream.ReplicaClient = (*Client)(nil)

// New wraps client. Faults are enabled.
func New(client litestream.ReplicaClient, cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.SlowDelay <= 0 {
		cfg.SlowDelay = 50 * time.Millisecond
	}
	return &Client{
		ReplicaClient: client,
		cfg:           cfg,
		rng:           rand.New(rand.NewSource(cfg.Seed)),
		enabled:       true,
		counts:        make(map[Kind]int),
		hidden:        make(map[fileKey]bool),
	}
}

// Hide leaves a file out of listings until Unhide, whether faults are
// enabled or not; opening it still works, as on a backend whose listing
// lags its writes.
func (c *Client) Hide(level int, minTXID, maxTXID ltx.TXID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hidden[fileKey{level, minTXID, maxTXID}] = true
}

// Unhide lists a hidden file again.
func (c *Client) Unhide(level int, minTXID, maxTXID ltx.TXID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.hidden, fileKey{level, minTXID, maxTXID})
}

// visible drops hidden files from a listing.
func (c *Client) visible(infos []*ltx.FileInfo) []*ltx.FileInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := infos[:0]
	for _, info := range infos {
		if !c.hidden[fileKey{info.Level, info.MinTXID, info.MaxTXID}] {
			out = append(out, info)
		}
	}
	return out
}

// SetEnabled turns fault injection on or off; off, calls pass straight
// through.
func (c *Client) SetEnabled(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enabled = v
}

// Counts returns how many faults of each kind were injected.
func (c *Client) Counts() map[Kind]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[Kind]int, len(c.counts))
	for k, v := range c.counts {
		m[k] = v
	}
	return m
}

// draw picks at most one fault among kinds for a call, and a random number
// for the fault to use.
func (c *Client) draw(kinds ...Kind) (Kind, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled {
		return "", 0
	}
	for _, k := range kinds {
		if c.rng.Float64() < c.rate(k) {
			c.counts[k]++
			return k, c.rng.Int63()
		}
	}
	return "", 0
}

func (c *Client) rate(k Kind) float64 {
	switch k {
	case KindError:
		return c.cfg.ErrorRate
	case KindTimeout:
		return c.cfg.TimeoutRate
	case KindSlow:
		return c.cfg.SlowRate
	case KindShortRead:
		return c.cfg.ShortReadRate
	case KindHalfWrite:
		return c.cfg.HalfWriteRate
	case KindLostAck:
		return c.cfg.LostAckRate
	}
	return 0
}

// before applies the faults common to every call. A nil error lets the call
// proceed.
func (c *Client) before(ctx context.Context, op string, kinds ...Kind) (Kind, int64, error) {
	k, n := c.draw(append([]Kind{KindError, KindTimeout, KindSlow}, kinds...)...)
	switch k {
	case KindError:
		return k, n, fmt.Errorf("%s: %w", op, ErrInjected)
	case KindTimeout:
		t := time.NewTimer(c.cfg.Timeout)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return k, n, fmt.Errorf("%s: %w: %w", op, ErrInjected, context.Cause(ctx))
		case <-t.C:
			return k, n, fmt.Errorf("%s: %w: timed out after %s", op, ErrInjected, c.cfg.Timeout)
		}
	case KindSlow:
		t := time.NewTimer(time.Duration(n % int64(c.cfg.SlowDelay+1)))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return k, n, context.Cause(ctx)
		case <-t.C:
		}
	}
	return k, n, nil
}

// Init initializes the wrapped client.
func (c *Client) Init(ctx context.Context) error {
	if _, _, err := c.before(ctx, "init"); err != nil {
		return err
	}
	return c.ReplicaClient.Init(ctx)
}

// LTXFiles lists a level of the wrapped client.
func (c *Client) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	if _, _, err := c.before(ctx, fmt.Sprintf("list L%d", level)); err != nil {
		return nil, err
	}
	itr, err := c.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil {
		return nil, err
	}
	infos, err := ltx.SliceFileIterator(itr)
	if err != nil {
		return nil, err
	}
	return ltx.NewFileInfoSliceIterator(c.visible(infos)), nil
}

// OpenLTXFile opens a file of the wrapped client, possibly cut short.
func (c *Client) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	op := fmt.Sprintf("open L%d %s-%s", level, minTXID, maxTXID)
	k, n, err := c.before(ctx, op, KindShortRead)
	if err != nil {
		return nil, err
	}
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil || k != KindShortRead {
		return rc, err
	}
	return newShortReader(rc, op, n)
}

// WriteLTXFile writes through the wrapped client, possibly failing half-way
// or after the file was stored.
func (c *Client) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	op := fmt.Sprintf("write L%d %s-%s", level, minTXID, maxTXID)
	k, n, err := c.before(ctx, op, KindHalfWrite, KindLostAck)
	if err != nil {
		return nil, err
	}
	switch k {
	case KindHalfWrite:
		_, _ = io.CopyN(io.Discard, r, halfOf(r, n))
		return nil, fmt.Errorf("%s: %w: failed half-way", op, ErrInjected)
	case KindLostAck:
		if _, err := c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w: stored but reported failed", op, ErrInjected)
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

// DeleteLTXFiles deletes through the wrapped client.
func (c *Client) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	if _, _, err := c.before(ctx, fmt.Sprintf("delete %d files", len(a))); err != nil {
		return err
	}
	return c.ReplicaClient.DeleteLTXFiles(ctx, a)
}

// DeleteAll deletes everything through the wrapped client.
func (c *Client) DeleteAll(ctx context.Context) error {
	if _, _, err := c.before(ctx, "delete all"); err != nil {
		return err
	}
	return c.ReplicaClient.DeleteAll(ctx)
}

// SetLogger sets the wrapped client's logger.
func (c *Client) SetLogger(logger *slog.Logger) { c.ReplicaClient.SetLogger(logger) }

// maxUnknownCut bounds how much of a stream of unknown length a half-write
// or short read lets through.
const maxUnknownCut = 16 << 10

// halfOf returns half of r's remaining length when r can tell it (a file or
// an in-memory reader), else a random cut below maxUnknownCut.
func halfOf(r io.Reader, n int64) int64 {
	switch r := r.(type) {
	case interface{ Len() int }:
		return int64(r.Len()) / 2
	case *os.File:
		if fi, err := r.Stat(); err == nil {
			if off, err := r.Seek(0, io.SeekCurrent); err == nil {
				return (fi.Size() - off) / 2
			}
		}
	}
	return n % maxUnknownCut
}

// shortReader serves a strict prefix of a stream, then io.EOF or an error.
type shortReader struct {
	buf    []byte
	err    error
	closer io.Closer
}

// newShortReader reads ahead up to maxUnknownCut bytes of rc to pick a cut
// point strictly inside the stream.
func newShortReader(rc io.ReadCloser, op string, n int64) (io.ReadCloser, error) {
	buf := make([]byte, maxUnknownCut)
	m, err := io.ReadFull(rc, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		_ = rc.Close()
		return nil, err
	}
	var cut int
	if m > 0 {
		cut = int((n >> 1) % int64(m))
	}
	r := &shortReader{buf: buf[:cut], err: io.EOF, closer: rc}
	if n&1 == 1 {
		r.err = fmt.Errorf("%s: %w: short read after %d bytes", op, ErrInjected, cut)
	}
	return r, nil
}

func (r *shortReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		return 0, r.err
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *shortReader) Close() error { return r.closer.Close() }
