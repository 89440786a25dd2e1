// Package clienttest is the conformance suite every ReplicaClient runs
// against a real server: each sentence of the ReplicaClient contract is one
// subtest.
package clienttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// NewClientFunc returns a client whose root is the given unique path (a
// directory, key prefix or object-name prefix). Clients with different paths
// must not see each other's files.
type NewClientFunc func(t testing.TB, path string) litestream.ReplicaClient

// Options adjust the suite for a backend.
type Options struct {
	// LargeFileSize is the size of the large-file test in bytes; it should
	// cross the backend's multipart or chunk threshold. Default 12 MiB.
	LargeFileSize int

	// ListRaw, when set, lists the objects under a client's path through
	// the service's own API; the StoreRoundTrip subtest then copies them
	// into a file replica and restores from it (see RawLayout).
	ListRaw ListRawFunc
	// RawLayout is how the backend names objects under its path.
	RawLayout RawLayout

	// RootPath runs the root subtests, with newClient(t, "") as the replica
	// at the root of the bucket, container or directory tree that the
	// other subtests' paths also live in.
	RootPath bool
}

// Run runs the whole suite. Each subtest uses its own path.
func Run(t *testing.T, newClient NewClientFunc, opt Options) {
	if opt.LargeFileSize == 0 {
		opt.LargeFileSize = 12 << 20
	}
	var n int
	var mu sync.Mutex
	freshPath := func(t testing.TB) (litestream.ReplicaClient, string) {
		mu.Lock()
		n++
		p := fmt.Sprintf("conformance-%d-%d", time.Now().UnixNano(), n)
		mu.Unlock()
		c := newClient(t, p)
		if err := c.Init(context.Background()); err != nil {
			t.Fatalf("init: %v", err)
		}
		return c, p
	}
	fresh := func(t testing.TB) litestream.ReplicaClient {
		c, _ := freshPath(t)
		return c
	}

	t.Run("InitIdempotent", func(t *testing.T) { testInitIdempotent(t, fresh(t)) })
	t.Run("WriteReturnsInfo", func(t *testing.T) { testWriteReturnsInfo(t, fresh(t)) })
	t.Run("ListEmptyLevel", func(t *testing.T) { testListEmptyLevel(t, fresh(t)) })
	t.Run("ListOrdered", func(t *testing.T) { testListOrdered(t, fresh(t)) })
	t.Run("ListSeek", func(t *testing.T) { testListSeek(t, fresh(t)) })
	t.Run("ListLevelsSeparate", func(t *testing.T) { testListLevelsSeparate(t, fresh(t)) })
	t.Run("Timestamps", func(t *testing.T) { testTimestamps(t, fresh(t)) })
	t.Run("OpenWhole", func(t *testing.T) { testOpenWhole(t, fresh(t)) })
	t.Run("OpenRange", func(t *testing.T) { testOpenRange(t, fresh(t)) })
	t.Run("OpenMissing", func(t *testing.T) { testOpenMissing(t, fresh(t)) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, fresh(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, fresh(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, fresh(t)) })
	t.Run("FailedWriteLeavesNothing", func(t *testing.T) {
		c, p := freshPath(t)
		testFailedWriteLeavesNothing(t, c, opt.ListRaw, p)
	})
	t.Run("DeleteAllScoped", func(t *testing.T) { testDeleteAllScoped(t, fresh(t), fresh(t)) })
	if opt.RootPath {
		t.Run("DeleteAllAtRoot", func(t *testing.T) {
			root := newClient(t, "")
			if err := root.Init(context.Background()); err != nil {
				t.Fatalf("init: %v", err)
			}
			// Whatever else shares the root, here another path's replica, stays.
			testDeleteAllScoped(t, root, fresh(t))
			if err := root.DeleteAll(context.Background()); err != nil {
				t.Fatalf("delete all: %v", err)
			}
		})
		t.Run("StoreRoundTripAtRoot", func(t *testing.T) {
			root := newClient(t, "")
			testStoreRoundTrip(t, root)
			if err := root.DeleteAll(context.Background()); err != nil {
				t.Fatalf("delete all: %v", err)
			}
		})
	}
	t.Run("LargeFile", func(t *testing.T) { testLargeFile(t, fresh(t), opt.LargeFileSize) })
	t.Run("ConcurrentWriters", func(t *testing.T) {
		clients := make([]litestream.ReplicaClient, 4)
		for i := range clients {
			clients[i] = fresh(t)
		}
		testConcurrentWriters(t, clients)
	})
	t.Run("PageIndex", func(t *testing.T) { testPageIndex(t, fresh(t)) })
	t.Run("StoreRoundTrip", func(t *testing.T) {
		c, p := freshPath(t)
		src := testStoreRoundTrip(t, c)
		if opt.ListRaw != nil {
			t.Run("RawCopy", func(t *testing.T) { testRawCopy(t, c, opt.ListRaw(t, p), opt.RawLayout, src) })
		}
	})
}

// MustLTX encodes a valid LTX file with the given pages of random content.
// Snapshot files (minTXID 1) get pages 1..pageN.
func MustLTX(t testing.TB, pageSize uint32, minTXID, maxTXID ltx.TXID, pageN uint32, ts time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(ltx.Header{
		Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: pageSize, Commit: pageN,
		MinTXID: minTXID, MaxTXID: maxTXID, Timestamp: ts.UnixMilli(),
	}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, pageSize)
	lockPgno := ltx.LockPgno(pageSize)
	for pgno := uint32(1); pgno <= pageN; pgno++ {
		if pgno == lockPgno {
			continue
		}
		_, _ = rand.Read(data)
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ranges(a []*ltx.FileInfo) string {
	var buf bytes.Buffer
	for _, info := range a {
		fmt.Fprintf(&buf, "L%d:%d-%d ", info.Level, info.MinTXID, info.MaxTXID)
	}
	return buf.String()
}

func testInitIdempotent(t *testing.T, c litestream.ReplicaClient) {
	for i := 0; i < 2; i++ {
		if err := c.Init(context.Background()); err != nil {
			t.Fatalf("init #%d: %v", i+2, err)
		}
	}
	if c.Type() == "" {
		t.Fatal("Type() is empty")
	}
}

func testWriteReturnsInfo(t *testing.T, c litestream.ReplicaClient) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	b := MustLTX(t, 4096, 1, 3, 2, ts)
	info := MustWrite(t, c, 1, 1, 3, b)
	if info.Level != 1 || info.MinTXID != 1 || info.MaxTXID != 3 {
		t.Fatalf("info = L%d %d-%d, want L1 1-3", info.Level, info.MinTXID, info.MaxTXID)
	}
	if info.Size != int64(len(b)) {
		t.Fatalf("info.Size = %d, want %d", info.Size, len(b))
	}
	if !info.CreatedAt.Equal(ts) {
		t.Fatalf("info.CreatedAt = %v, want header timestamp %v", info.CreatedAt, ts)
	}
}

func testListEmptyLevel(t *testing.T, c litestream.ReplicaClient) {
	if a := MustList(t, c, 0, 0, false); len(a) != 0 {
		t.Fatalf("empty level listed %s", ranges(a))
	}
	if a := MustList(t, c, 5, 0, true); len(a) != 0 {
		t.Fatalf("empty level listed %s", ranges(a))
	}
}

func testListOrdered(t *testing.T, c litestream.ReplicaClient) {
	now := time.Now()
	sizes := map[ltx.TXID]int{}
	for _, txid := range []ltx.TXID{5, 1, 0x10, 3, 0x100, 2} {
		b := MustLTX(t, 512, txid, txid, 1+uint32(txid%3), now)
		sizes[txid] = len(b)
		MustWrite(t, c, 0, txid, txid, b)
	}
	for _, useMetadata := range []bool{false, true} {
		a := MustList(t, c, 0, 0, useMetadata)
		want := []ltx.TXID{1, 2, 3, 5, 0x10, 0x100}
		if len(a) != len(want) {
			t.Fatalf("useMetadata=%v: listed %s, want %v", useMetadata, ranges(a), want)
		}
		for i, info := range a {
			if info.Level != 0 || info.MinTXID != want[i] || info.MaxTXID != want[i] {
				t.Fatalf("useMetadata=%v: item %d = %s, want %d", useMetadata, i, ranges(a[i:i+1]), want[i])
			}
			if info.Size != int64(sizes[want[i]]) {
				t.Fatalf("useMetadata=%v: size of %d = %d, want %d", useMetadata, want[i], info.Size, sizes[want[i]])
			}
		}
	}
}

func testListSeek(t *testing.T, c litestream.ReplicaClient) {
	now := time.Now()
	for _, r := range [][2]ltx.TXID{{1, 4}, {5, 8}, {9, 9}, {10, 20}} {
		MustWrite(t, c, 2, r[0], r[1], MustLTX(t, 512, r[0], r[1], 1, now))
	}
	for _, tt := range []struct {
		seek ltx.TXID
		want int
	}{{0, 4}, {1, 4}, {2, 3}, {5, 3}, {9, 2}, {10, 1}, {11, 0}} {
		if a := MustList(t, c, 2, tt.seek, false); len(a) != tt.want {
			t.Fatalf("seek %d listed %s, want %d files", tt.seek, ranges(a), tt.want)
		} else if len(a) > 0 && a[0].MinTXID < tt.seek {
			t.Fatalf("seek %d listed %s", tt.seek, ranges(a))
		}
	}
}

func testListLevelsSeparate(t *testing.T, c litestream.ReplicaClient) {
	now := time.Now()
	MustWrite(t, c, 0, 1, 1, MustLTX(t, 512, 1, 1, 1, now))
	MustWrite(t, c, 1, 1, 2, MustLTX(t, 512, 1, 2, 1, now))
	MustWrite(t, c, 9, 1, 2, MustLTX(t, 512, 1, 2, 1, now))
	for level, want := range map[int]string{0: "L0:1-1 ", 1: "L1:1-2 ", 9: "L9:1-2 ", 2: ""} {
		if got := ranges(MustList(t, c, level, 0, false)); got != want {
			t.Fatalf("L%d listed %q, want %q", level, got, want)
		}
	}
}

func testTimestamps(t *testing.T, c litestream.ReplicaClient) {
	// Timestamps far from now show whether the backend keeps the header's.
	ts1 := time.Date(2020, 1, 2, 3, 4, 5, 678e6, time.UTC)
	ts2 := time.Date(2021, 6, 7, 8, 9, 10, 11e6, time.UTC)
	MustWrite(t, c, 0, 1, 1, MustLTX(t, 512, 1, 1, 1, ts1))
	MustWrite(t, c, 0, 2, 2, MustLTX(t, 512, 2, 2, 1, ts2))
	a := MustList(t, c, 0, 0, true)
	if len(a) != 2 {
		t.Fatalf("listed %s", ranges(a))
	}
	if !a[0].CreatedAt.Equal(ts1) || !a[1].CreatedAt.Equal(ts2) {
		t.Fatalf("CreatedAt = %v, %v; want header timestamps %v, %v", a[0].CreatedAt, a[1].CreatedAt, ts1, ts2)
	}
}

func testOpenWhole(t *testing.T, c litestream.ReplicaClient) {
	b := MustLTX(t, 4096, 1, 1, 3, time.Now())
	MustWrite(t, c, 0, 1, 1, b)
	if got := MustRead(t, c, 0, 1, 1, 0, 0); !bytes.Equal(got, b) {
		t.Fatalf("read %d bytes, differ from the %d written", len(got), len(b))
	}
	dec := ltx.NewDecoder(bytes.NewReader(MustRead(t, c, 0, 1, 1, 0, 0)))
	if err := dec.Verify(); err != nil {
		t.Fatalf("stored file does not verify: %v", err)
	}
}

func testOpenRange(t *testing.T, c litestream.ReplicaClient) {
	b := MustLTX(t, 4096, 3, 4, 4, time.Now())
	MustWrite(t, c, 1, 3, 4, b)
	for _, r := range [][2]int64{{0, 100}, {10, 10}, {100, 1}, {int64(len(b)) - 16, 16}, {200, 0}, {int64(len(b)) - 5, 0}} {
		want := b[r[0]:]
		if r[1] > 0 {
			want = b[r[0] : r[0]+r[1]]
		}
		if got := MustRead(t, c, 1, 3, 4, r[0], r[1]); !bytes.Equal(got, want) {
			t.Fatalf("range offset=%d size=%d: got %d bytes, want %d", r[0], r[1], len(got), len(want))
		}
	}
}

func testOpenMissing(t *testing.T, c litestream.ReplicaClient) {
	for _, r := range [][2]int64{{0, 0}, {10, 0}, {10, 10}} {
		rc, err := c.OpenLTXFile(context.Background(), 0, 7, 7, r[0], r[1])
		if err == nil {
			// Some protocols only report absence on the first read.
			_, err = io.ReadAll(rc)
			_ = rc.Close()
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open missing (offset=%d size=%d): err = %v, want os.ErrNotExist", r[0], r[1], err)
		}
	}
}

// failingReader serves a prefix of a file, then fails: a writer killed or
// disconnected part-way.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// A write whose input fails part-way returns an error and leaves nothing a
// listing returns or an open finds, and, where the raw store can be listed,
// nothing at all.
func testFailedWriteLeavesNothing(t *testing.T, c litestream.ReplicaClient, listRaw ListRawFunc, path string) {
	ctx := context.Background()
	b := MustLTX(t, 4096, 1, 1, 64, time.Now())
	errCut := errors.New("writer cut off")
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, &failingReader{r: bytes.NewReader(b[:len(b)/2]), err: errCut}); err == nil {
		t.Fatal("write of a failing stream succeeded")
	}
	if got := MustList(t, c, 0, 0, false); len(got) != 0 {
		t.Fatalf("listing after a failed write: %s, want nothing", ranges(got))
	}
	if rc, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0); err == nil {
		_, err = io.ReadAll(rc)
		_ = rc.Close()
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open after a failed write: err = %v, want os.ErrNotExist", err)
		}
	}
	if listRaw != nil {
		for _, obj := range listRaw(t, path) {
			t.Errorf("object %q left by a failed write", obj.Key)
		}
	}
}

func testOverwrite(t *testing.T, c litestream.ReplicaClient) {
	b1 := MustLTX(t, 512, 1, 5, 2, time.Now())
	b2 := MustLTX(t, 512, 1, 5, 4, time.Now())
	MustWrite(t, c, 9, 1, 5, b1)
	MustWrite(t, c, 9, 1, 5, b2)
	if got := MustRead(t, c, 9, 1, 5, 0, 0); !bytes.Equal(got, b2) {
		t.Fatalf("after overwrite read %d bytes, want the second file's %d", len(got), len(b2))
	}
	if a := MustList(t, c, 9, 0, false); len(a) != 1 || a[0].Size != int64(len(b2)) {
		t.Fatalf("after overwrite listed %s", ranges(a))
	}
}

func testDelete(t *testing.T, c litestream.ReplicaClient) {
	now := time.Now()
	var infos []*ltx.FileInfo
	for txid := ltx.TXID(1); txid <= 5; txid++ {
		infos = append(infos, MustWrite(t, c, 0, txid, txid, MustLTX(t, 512, txid, txid, 1, now)))
	}
	missing := &ltx.FileInfo{Level: 0, MinTXID: 99, MaxTXID: 99}
	if err := c.DeleteLTXFiles(context.Background(), []*ltx.FileInfo{infos[1], infos[3], missing}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := ranges(MustList(t, c, 0, 0, false)); got != "L0:1-1 L0:3-3 L0:5-5 " {
		t.Fatalf("after delete listed %q", got)
	}
	if err := c.DeleteLTXFiles(context.Background(), []*ltx.FileInfo{infos[1]}); err != nil {
		t.Fatalf("deleting a deleted file: %v", err)
	}
	if err := c.DeleteLTXFiles(context.Background(), nil); err != nil {
		t.Fatalf("deleting nothing: %v", err)
	}
}

func testDeleteAllScoped(t *testing.T, c, other litestream.ReplicaClient) {
	now := time.Now()
	MustWrite(t, c, 0, 1, 1, MustLTX(t, 512, 1, 1, 1, now))
	MustWrite(t, c, 1, 1, 1, MustLTX(t, 512, 1, 1, 1, now))
	MustWrite(t, other, 0, 1, 1, MustLTX(t, 512, 1, 1, 1, now))
	if err := c.DeleteAll(context.Background()); err != nil {
		t.Fatalf("delete all: %v", err)
	}
	if a := append(MustList(t, c, 0, 0, false), MustList(t, c, 1, 0, false)...); len(a) != 0 {
		t.Fatalf("after DeleteAll listed %s", ranges(a))
	}
	if a := MustList(t, other, 0, 0, false); len(a) != 1 {
		t.Fatalf("DeleteAll of one path removed another path's files: %s", ranges(a))
	}
	if err := c.DeleteAll(context.Background()); err != nil {
		t.Fatalf("delete all of an empty path: %v", err)
	}
	MustWrite(t, c, 0, 2, 2, MustLTX(t, 512, 2, 2, 1, now))
	if a := MustList(t, c, 0, 0, false); len(a) != 1 {
		t.Fatalf("write after DeleteAll listed %s", ranges(a))
	}
}

func testLargeFile(t *testing.T, c litestream.ReplicaClient, size int) {
	const pageSize = 65536
	b := MustLTX(t, pageSize, 1, 1, uint32(size/pageSize)+1, time.Now())
	info := MustWrite(t, c, 0, 1, 1, b)
	if info.Size != int64(len(b)) {
		t.Fatalf("info.Size = %d, want %d", info.Size, len(b))
	}
	if got := MustRead(t, c, 0, 1, 1, 0, 0); !bytes.Equal(got, b) {
		t.Fatalf("large file: read %d bytes, differ from the %d written", len(got), len(b))
	}
	mid := int64(len(b) / 2)
	if got := MustRead(t, c, 0, 1, 1, mid, 1000); !bytes.Equal(got, b[mid:mid+1000]) {
		t.Fatal("large file: ranged read differs")
	}
}

func testConcurrentWriters(t *testing.T, clients []litestream.ReplicaClient) {
	const perClient = 8
	var wg sync.WaitGroup
	errs := make(chan error, len(clients)*perClient)
	for _, c := range clients {
		wg.Add(1)
		go func(c litestream.ReplicaClient) {
			defer wg.Done()
			for txid := ltx.TXID(1); txid <= perClient; txid++ {
				b := MustLTX(t, 512, txid, txid, 2, time.Now())
				if _, err := c.WriteLTXFile(context.Background(), 0, txid, txid, bytes.NewReader(b)); err != nil {
					errs <- err
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	for i, c := range clients {
		if a := MustList(t, c, 0, 0, false); len(a) != perClient {
			t.Fatalf("client %d listed %s, want %d files", i, ranges(a), perClient)
		}
	}
}

func testPageIndex(t *testing.T, c litestream.ReplicaClient) {
	b := MustLTX(t, 4096, 1, 2, 5, time.Now())
	info := MustWrite(t, c, 1, 1, 2, b)
	index, err := litestream.FetchPageIndex(context.Background(), c, info)
	if err != nil {
		t.Fatalf("fetch page index: %v", err)
	}
	if len(index) != 5 {
		t.Fatalf("page index has %d entries, want 5", len(index))
	}
	hdr, data, err := litestream.FetchPage(context.Background(), c, 1, 1, 2, index[3].Offset, index[3].Size)
	if err != nil {
		t.Fatalf("fetch page 3: %v", err)
	} else if hdr.Pgno != 3 || len(data) != 4096 {
		t.Fatalf("fetched pgno %d with %d bytes, want page 3 of 4096", hdr.Pgno, len(data))
	}
	if h, err := litestream.FetchLTXHeader(context.Background(), c, info); err != nil {
		t.Fatalf("fetch header: %v", err)
	} else if h.MinTXID != 1 || h.MaxTXID != 2 || h.PageSize != 4096 {
		t.Fatalf("header = %+v", h)
	}
}
