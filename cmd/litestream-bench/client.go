// A ReplicaClient wrapper that counts calls and bytes reaching the backend.

package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// countingClient counts every call and byte that reaches the backend, and
// when each L0 upload started.
type countingClient struct {
	litestream.ReplicaClient

	mu      sync.Mutex
	calls   int
	last    string // last method called
	writes  int
	bytes   int64
	batches [][]time.Time          // start times of L0 uploads, grouped in runs
	l0End   time.Time              // end of the last L0 upload
	l0Ends  map[ltx.TXID]time.Time // end of each L0 upload, by TXID
	methods map[string]int         // calls by method
	written map[[3]uint64]bool     // every file written: level, min, max
}

var _ litestream.ReplicaClient = (*countingClient)(nil)

// counts is a snapshot of a countingClient's counters.
type counts struct {
	Last   string `json:"last"`
	Calls  int    `json:"calls"`
	Writes int    `json:"writes"`
	Bytes  int64  `json:"bytes"`
}

func (c *countingClient) snapshot() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return counts{Last: c.last, Calls: c.calls, Writes: c.writes, Bytes: c.bytes}
}

// batchStarts returns when each upload batch started. A run of uploads
// longer than maxSpan is not one batch, so each of its uploads counts.
func (c *countingClient) batchStarts(maxSpan time.Duration) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var starts []time.Time
	for _, run := range c.batches {
		if run[len(run)-1].Sub(run[0]) > maxSpan {
			starts = append(starts, run...)
		} else {
			starts = append(starts, run[0])
		}
	}
	return starts
}

// uploadedAt returns when the L0 file of txid finished uploading, and
// forgets it.
func (c *countingClient) uploadedAt(txid ltx.TXID) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.l0Ends[txid]
	delete(c.l0Ends, txid)
	return t, ok
}

func (c *countingClient) countMethodLocked(method string) {
	if c.methods == nil {
		c.methods = make(map[string]int)
	}
	c.methods[method]++
}

// methodCounts returns a copy of the calls by method.
func (c *countingClient) methodCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.methods))
	for k, v := range c.methods {
		m[k] = v
	}
	return m
}

func (c *countingClient) count(n int64) {
	c.mu.Lock()
	c.bytes += n
	c.mu.Unlock()
}

func (c *countingClient) call(method string) {
	c.mu.Lock()
	c.calls++
	c.last = method
	c.countMethodLocked(method)
	c.mu.Unlock()
}

func (c *countingClient) Init(ctx context.Context) error {
	c.call("Init")
	return c.ReplicaClient.Init(ctx)
}

func (c *countingClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	c.call("LTXFiles")
	return c.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
}

func (c *countingClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	c.call("OpenLTXFile")
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, c: c}, nil
}

func (c *countingClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	c.mu.Lock()
	c.calls++
	c.writes++
	c.last = "WriteLTXFile"
	c.countMethodLocked("WriteLTXFile")
	if c.written == nil {
		c.written = make(map[[3]uint64]bool)
	}
	if key := [3]uint64{uint64(level), uint64(minTXID), uint64(maxTXID)}; c.written[key] {
		c.countMethodLocked("rewrite")
	} else {
		c.written[key] = true
	}
	if now := time.Now(); level == 0 {
		if len(c.batches) == 0 || now.Sub(c.l0End) > batchGap {
			c.batches = append(c.batches, nil)
		}
		c.batches[len(c.batches)-1] = append(c.batches[len(c.batches)-1], now)
	}
	c.mu.Unlock()
	info, err := c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, &countingReader{ReadCloser: io.NopCloser(r), c: c})
	if level == 0 && err == nil {
		c.mu.Lock()
		c.l0End = time.Now()
		if c.l0Ends == nil {
			c.l0Ends = make(map[ltx.TXID]time.Time)
		}
		c.l0Ends[maxTXID] = c.l0End
		c.mu.Unlock()
	}
	return info, err
}

// batchGap is the longest pause between two uploads of one batch: the
// replica starts each file as soon as the previous one is written, but a
// loaded machine can stall it for a few milliseconds.
const batchGap = 50 * time.Millisecond

func (c *countingClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	c.call("DeleteLTXFiles")
	return c.ReplicaClient.DeleteLTXFiles(ctx, a)
}

func (c *countingClient) DeleteAll(ctx context.Context) error {
	c.call("DeleteAll")
	return c.ReplicaClient.DeleteAll(ctx)
}

func (c *countingClient) SetLogger(logger *slog.Logger) { c.ReplicaClient.SetLogger(logger) }

type countingReader struct {
	io.ReadCloser
	c *countingClient
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.count(int64(n))
	return n, err
}
