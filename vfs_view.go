// vfs_view.go: the read side of the VFS. A txView is one TXID of a replica
// (its restore plan with each file's page index); pages are resolved
// through it, fetched with ranged reads, verified and kept in a shared LRU.
package litestream

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
)

// ltxFileKey names one stored LTX file.
type ltxFileKey struct {
	level            int
	minTXID, maxTXID ltx.TXID
}

func (k ltxFileKey) String() string {
	return fmt.Sprintf("L%d %s-%s", k.level, k.minTXID, k.maxTXID)
}

// ltxIndex is one file's page index as sorted parallel slices: 16 bytes a
// page instead of a map entry, so a 1 GB snapshot's index is about 4 MB.
type ltxIndex struct {
	key     ltxFileKey
	size    int64 // stored file size, bounds every frame
	pgnos   []uint32
	offsets []int64
	sizes   []int32
}

// find returns the position of pgno in the index.
func (x *ltxIndex) find(pgno uint32) (int, bool) {
	i := sort.Search(len(x.pgnos), func(i int) bool { return x.pgnos[i] >= pgno })
	return i, i < len(x.pgnos) && x.pgnos[i] == pgno
}

// fetchLTXIndex reads a file's page index and checks every entry lies in
// the file, so that a damaged index fails here and not as a wrong page.
func fetchLTXIndex(ctx context.Context, client ReplicaClient, info *ltx.FileInfo) (*ltxIndex, error) {
	key := ltxFileKey{info.Level, info.MinTXID, info.MaxTXID}
	m, err := FetchPageIndex(ctx, client, info)
	if err != nil {
		return nil, fmt.Errorf("read page index of %s: %w", key, err)
	}
	x := &ltxIndex{key: key, size: info.Size, pgnos: make([]uint32, 0, len(m))}
	for pgno := range m {
		x.pgnos = append(x.pgnos, pgno)
	}
	sort.Slice(x.pgnos, func(i, j int) bool { return x.pgnos[i] < x.pgnos[j] })
	x.offsets, x.sizes = make([]int64, len(x.pgnos)), make([]int32, len(x.pgnos))
	for i, pgno := range x.pgnos {
		e := m[pgno]
		if pgno == 0 || e.Offset < ltx.HeaderSize || e.Size <= ltx.PageHeaderSize || e.Size > 1<<20 || e.Offset+e.Size > info.Size {
			return nil, fmt.Errorf("damaged page index of %s: page %d at offset %d size %d does not fit a %d-byte file", key, pgno, e.Offset, e.Size, info.Size)
		}
		x.offsets[i], x.sizes[i] = e.Offset, int32(e.Size)
	}
	return x, nil
}

// txView is the database at one TXID. It is immutable once built and shared
// by every connection pinned to that TXID.
type txView struct {
	txid     ltx.TXID
	pageSize uint32
	commit   uint32      // database size in pages
	files    []*ltxIndex // restore plan order: the newest file last
}

func (v *txView) size() int64 { return int64(v.commit) * int64(v.pageSize) }

// resolve finds the newest file of the plan holding pgno.
func (v *txView) resolve(pgno uint32) (*ltxIndex, int, bool) {
	for i := len(v.files) - 1; i >= 0; i-- {
		if j, ok := v.files[i].find(pgno); ok {
			return v.files[i], j, true
		}
	}
	return nil, 0, false
}

// buildView computes the restore plan for txID or timestamp (both zero:
// latest) and reads the page index of each file, reusing known indexes.
func buildView(ctx context.Context, client ReplicaClient, txID ltx.TXID, timestamp time.Time, known func(ltxFileKey) *ltxIndex) (*txView, error) {
	plan, err := CalcRestorePlan(ctx, client, txID, timestamp, nil)
	if err != nil {
		return nil, err
	}
	last := plan[len(plan)-1]
	hdr, err := FetchLTXHeader(ctx, client, last)
	if err != nil {
		return nil, err
	}
	if hdr.MinTXID != last.MinTXID || hdr.MaxTXID != last.MaxTXID {
		return nil, fmt.Errorf("L%d %s-%s holds %s-%s: %w", last.Level, last.MinTXID, last.MaxTXID, hdr.MinTXID, hdr.MaxTXID, ErrConflict)
	}
	if hdr.PageSize < 512 || hdr.PageSize > 65536 || hdr.PageSize&(hdr.PageSize-1) != 0 {
		return nil, fmt.Errorf("L%d %s-%s: invalid page size %d", last.Level, last.MinTXID, last.MaxTXID, hdr.PageSize)
	}
	v := &txView{txid: last.MaxTXID, pageSize: hdr.PageSize, commit: hdr.Commit, files: make([]*ltxIndex, len(plan))}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(headerFetchConcurrency)
	for i, info := range plan {
		key := ltxFileKey{info.Level, info.MinTXID, info.MaxTXID}
		if x := known(key); x != nil {
			v.files[i] = x
			continue
		}
		g.Go(func() error {
			x, err := fetchLTXIndex(gctx, client, info)
			v.files[i] = x
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("TXID %s: %w", v.txid, err)
	}
	return v, nil
}

// pageKey names a decoded page in the cache: the file it came from, so that
// views of different TXIDs share the pages they have in common.
type pageKey struct {
	file ltxFileKey
	pgno uint32
}

// pageCache is an LRU of decoded pages bounded in bytes.
type vfsPageCache struct {
	mu    sync.Mutex
	limit int
	used  int
	order *list.List // front = most recent; values are *cachedPage
	items map[pageKey]*list.Element
}

type cachedPage struct {
	key  pageKey
	data []byte
}

func newVFSPageCache(limit int) *vfsPageCache {
	return &vfsPageCache{limit: limit, order: list.New(), items: make(map[pageKey]*list.Element)}
}

func (c *vfsPageCache) get(k pageKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedPage).data, true
}

func (c *vfsPageCache) has(k pageKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[k]
	return ok
}

func (c *vfsPageCache) put(k pageKey, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&cachedPage{key: k, data: data})
	c.used += len(data)
	for c.used > c.limit && c.order.Len() > 1 {
		e := c.order.Back()
		p := c.order.Remove(e).(*cachedPage)
		delete(c.items, p.key)
		c.used -= len(p.data)
	}
}

// errLTXFileGone marks a page read whose file was removed from the replica.
type errLTXFileGone struct {
	file ltxFileKey
	err  error
}

func (e *errLTXFileGone) Error() string { return fmt.Sprintf("%s was removed: %v", e.file, e.err) }
func (e *errLTXFileGone) Unwrap() error { return e.err }

// vfsPageReader fetches pages of views through one client and cache.
type vfsPageReader struct {
	hydrator  atomic.Pointer[Hydrator]
	client    ReplicaClient
	cache     *vfsPageCache
	readAhead int // bytes fetched past a missed page, in one request
}

// page returns page pgno of v, fetching it and its stored neighbours on a
// cache miss. The lock page, which SQLite never fills, reads as zeros.
func (r *vfsPageReader) page(ctx context.Context, v *txView, pgno uint32) ([]byte, error) {
	if pgno == ltx.LockPgno(v.pageSize) {
		return make([]byte, v.pageSize), nil
	}
	x, j, ok := v.resolve(pgno)
	if !ok {
		return nil, fmt.Errorf("page %d of TXID %s is in no file of its restore plan (%d files)", pgno, v.txid, len(v.files))
	}
	if b, ok := r.cache.get(pageKey{x.key, pgno}); ok {
		return b, nil
	}
	if b, ok, err := r.hydrator.Load().page(v, pgno, x); ok || err != nil {
		return b, err
	}

	// Coalesce the following frames of the same file while they are the
	// next pages, stored back to back, not shadowed by a newer file and not
	// cached yet.
	end := j + 1
	total := int64(x.sizes[j])
	for end < len(x.pgnos) && total < int64(r.readAhead) {
		pg := x.pgnos[end]
		if pg != x.pgnos[end-1]+1 || pg > v.commit || x.offsets[end] != x.offsets[end-1]+int64(x.sizes[end-1]) {
			break
		}
		if owner, _, _ := v.resolve(pg); owner != x || r.cache.has(pageKey{x.key, pg}) {
			break
		}
		total += int64(x.sizes[end])
		end++
	}

	info := &ltx.FileInfo{Level: x.key.level, MinTXID: x.key.minTXID, MaxTXID: x.key.maxTXID}
	buf, err := readRange(ctx, r.client, info, x.offsets[j], total)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &errLTXFileGone{file: x.key, err: err}
	} else if err != nil {
		return nil, fmt.Errorf("read page %d of TXID %s: %w", pgno, v.txid, err)
	} else if int64(len(buf)) != total {
		return nil, fmt.Errorf("read page %d of TXID %s from %s: got %d of %d bytes at offset %d", pgno, v.txid, x.key, len(buf), total, x.offsets[j])
	}

	var want []byte
	for k := j; k < end; k++ {
		lo := x.offsets[k] - x.offsets[j]
		data, err := decodePageFrame(buf[lo:lo+int64(x.sizes[k])], x.pgnos[k], v.pageSize)
		if err != nil {
			return nil, fmt.Errorf("page %d of TXID %s in %s at offset %d: %w", x.pgnos[k], v.txid, x.key, x.offsets[k], err)
		}
		r.cache.put(pageKey{x.key, x.pgnos[k]}, data)
		if k == j {
			want = data
		}
	}
	return want, nil
}

// decodePageFrame decodes one LTX page frame into a page of exactly
// pageSize bytes and checks it is the page the index promised.
func decodePageFrame(frame []byte, pgno, pageSize uint32) ([]byte, error) {
	var hdr ltx.PageHeader
	if err := hdr.UnmarshalBinary(frame); err != nil {
		return nil, fmt.Errorf("decode page header: %w", err)
	}
	if hdr.Pgno != pgno {
		return nil, fmt.Errorf("frame holds page %d, index says %d: damaged file", hdr.Pgno, pgno)
	}
	if hdr.Flags&ltx.PageHeaderFlagSize == 0 {
		_, data, err := ltx.DecodePageData(frame)
		if err != nil {
			return nil, fmt.Errorf("decode page data: %w", err)
		}
		if len(data) != int(pageSize) {
			return nil, fmt.Errorf("page data is %d bytes, want %d: damaged file", len(data), pageSize)
		}
		return append([]byte(nil), data...), nil
	}
	if len(frame) < ltx.PageHeaderSize+4 {
		return nil, fmt.Errorf("frame of %d bytes has no size field: damaged file", len(frame))
	}
	n := binary.BigEndian.Uint32(frame[ltx.PageHeaderSize:])
	block := frame[ltx.PageHeaderSize+4:]
	if int64(n) != int64(len(block)) {
		return nil, fmt.Errorf("frame says %d compressed bytes, index leaves %d: damaged file", n, len(block))
	}
	data := make([]byte, pageSize)
	got, err := lz4.UncompressBlock(block, data)
	if err != nil {
		return nil, fmt.Errorf("decompress page: %w: damaged file", err)
	}
	if got != int(pageSize) {
		return nil, fmt.Errorf("page data is %d bytes, want %d: damaged file", got, pageSize)
	}
	return data, nil
}
