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
	batches []time.Time // start of each run of back-to-back L0 uploads
	l0End   time.Time   // end of the last L0 upload
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

func (c *countingClient) batchStarts() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.batches...)
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
	if now := time.Now(); level == 0 && now.Sub(c.l0End) > batchGap {
		c.batches = append(c.batches, now)
	}
	c.mu.Unlock()
	info, err := c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, &countingReader{ReadCloser: io.NopCloser(r), c: c})
	if level == 0 {
		c.mu.Lock()
		c.l0End = time.Now()
		c.mu.Unlock()
	}
	return info, err
}

// batchGap is the longest pause between two uploads of one batch: the
// replica starts each file as soon as the previous one is written.
const batchGap = 2 * time.Millisecond

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
