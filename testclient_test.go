// The tests' one wrapper client: it counts what reaches the wrapped
// ReplicaClient and runs optional hooks that fail, gate or kill calls.
// Randomized faults come from internal/faultclient instead.
package litestream_test

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// testClient wraps a ReplicaClient for tests. The zero hooks pass every call
// through; the counters are always kept.
type testClient struct {
	litestream.ReplicaClient

	// onWrite, when set, runs in place of WriteLTXFile; write hands a
	// reader, r or one wrapping it, to the wrapped client.
	onWrite func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error)
	// onList and onOpen, when set, run before each LTXFiles and OpenLTXFile
	// call with its level; an error fails the call.
	onList func(level int) error
	onOpen func(level int) error
	// onOpenFile, when set, runs before each OpenLTXFile call with its file.
	onOpenFile func(level int, minTXID, maxTXID ltx.TXID) error
	// recordOpens keeps each OpenLTXFile call's file and caller, for a
	// failure to name (see openCalls).
	recordOpens bool

	// openGate, when above zero, holds each opened file's first read (up to
	// 10s) until that many files were open at once, so that a test of
	// overlap does not depend on how fast the backend is.
	openGate    int64
	gateInit    sync.Once
	gateClose   sync.Once
	gateReached chan struct{}

	writes   atomic.Int64 // WriteLTXFile calls
	l0Writes atomic.Int64 // WriteLTXFile calls for L0
	lists    atomic.Int64 // LTXFiles calls
	l0Lists  atomic.Int64 // LTXFiles calls for L0: the replica monitor lists L0 on every attempt after a failed one
	opens    atomic.Int64 // OpenLTXFile calls, failed ones too
	deletes  atomic.Int64 // DeleteLTXFiles calls
	open     atomic.Int64 // files opened and not yet closed
	mostOpen atomic.Int64 // the most files open at once

	openedMu sync.Mutex
	opened   []string // with recordOpens: each open's file and caller
}

// openCalls returns the last n recorded OpenLTXFile calls.
func (c *testClient) openCalls(n int) []string {
	c.openedMu.Lock()
	defer c.openedMu.Unlock()
	return append([]string(nil), c.opened[max(0, len(c.opened)-n):]...)
}

func (c *testClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	c.lists.Add(1)
	if level == 0 {
		c.l0Lists.Add(1)
	}
	if c.onList != nil {
		if err := c.onList(level); err != nil {
			return nil, err
		}
	}
	return c.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
}

func (c *testClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	c.writes.Add(1)
	if level == 0 {
		c.l0Writes.Add(1)
	}
	write := func(r io.Reader) (*ltx.FileInfo, error) {
		return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
	}
	if c.onWrite != nil {
		return c.onWrite(level, r, write)
	}
	return write(r)
}

func (c *testClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	c.deletes.Add(1)
	return c.ReplicaClient.DeleteLTXFiles(ctx, a)
}

func (c *testClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	c.opens.Add(1)
	if c.recordOpens {
		c.openedMu.Lock()
		c.opened = append(c.opened, fmt.Sprintf("L%d %s-%s from:\n%s", level, minTXID, maxTXID, debug.Stack()))
		c.openedMu.Unlock()
	}
	if c.onOpen != nil {
		if err := c.onOpen(level); err != nil {
			return nil, err
		}
	}
	if c.onOpenFile != nil {
		if err := c.onOpenFile(level, minTXID, maxTXID); err != nil {
			return nil, err
		}
	}
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		return nil, err
	}
	c.gateInit.Do(func() { c.gateReached = make(chan struct{}) })
	n := c.open.Add(1)
	for m := c.mostOpen.Load(); n > m && !c.mostOpen.CompareAndSwap(m, n); m = c.mostOpen.Load() {
	}
	if c.openGate > 0 && n >= c.openGate {
		c.gateClose.Do(func() { close(c.gateReached) })
	}
	return &testReader{ReadCloser: rc, c: c, gated: c.openGate > 0}, nil
}

// testReader is a file opened through a testClient.
type testReader struct {
	io.ReadCloser
	c      *testClient
	gated  bool // the first read waits for the client's gate
	closed sync.Once
}

func (r *testReader) Read(p []byte) (int, error) {
	if r.gated {
		r.gated = false
		select {
		case <-r.c.gateReached:
		case <-time.After(10 * time.Second):
		}
	}
	return r.ReadCloser.Read(p)
}

func (r *testReader) Close() error {
	r.closed.Do(func() { r.c.open.Add(-1) })
	return r.ReadCloser.Close()
}
