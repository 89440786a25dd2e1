// vfs_view.go: the read side of the VFS. A txView is one TXID of a replica
// (its restore plan with each file's page index); pages are resolved
// through it, fetched with ranged reads, verified and kept in a shared LRU.

package litestream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
)

// ltxFileKey names one stored LTX file: its name, and the size and time
// the listing gives it, so that a file written again under the same name
// (a replica wiped and replicated to by another database) is another key
// and reuses no index or page cached for the old one.
type ltxFileKey struct {
	level            int
	minTXID, maxTXID ltx.TXID
	size             int64
	createdAt        int64 // UnixNano
}

func fileKeyOf(info *ltx.FileInfo) ltxFileKey {
	return ltxFileKey{info.Level, info.MinTXID, info.MaxTXID, info.Size, info.CreatedAt.UnixNano()}
}

func (k ltxFileKey) String() string {
	return fmt.Sprintf("L%d %s-%s", k.level, k.minTXID, k.maxTXID)
}

// ltxIndex is one file's page index as sorted parallel slices: 16 bytes a
// page instead of a map entry, so a 1 GB snapshot's index is about 4 MB.
type ltxIndex struct {
	key  ltxFileKey
	size int64 // stored file size, bounds every frame
	// trailer is the file's LTX trailer, read with the index: its file
	// checksum covers every byte, so a file listed again under the same
	// name is this one if it ends with the same trailer.
	trailer [ltx.TrailerSize]byte
	pgnos   []uint32
	offsets []int64
	sizes   []int32
}

// find returns the position of pgno in the index.
func (x *ltxIndex) find(pgno uint32) (int, bool) {
	i := sort.Search(len(x.pgnos), func(i int) bool { return x.pgnos[i] >= pgno })
	return i, i < len(x.pgnos) && x.pgnos[i] == pgno
}

// fetchLTXIndex reads a file's page index straight into sorted slices
// (FetchPageIndex builds a map, several times larger for a big snapshot)
// and checks every entry lies in the file, so that a damaged index fails
// here and not as a wrong page.
func fetchLTXIndex(ctx context.Context, client ReplicaClient, info *ltx.FileInfo) (*ltxIndex, error) {
	key := fileKeyOf(info)
	x, err := readLTXIndex(ctx, client, key, info.Size)
	if err != nil {
		return nil, fmt.Errorf("read page index of %s: %w", key, err)
	}
	return x, nil
}

func readLTXIndex(ctx context.Context, client ReplicaClient, key ltxFileKey, fileSize int64) (*ltxIndex, error) {
	const tailN = 8 + ltx.TrailerSize // index size field + trailer
	r := &vfsPageReader{client: client}
	if fileSize < ltx.HeaderSize+tailN {
		return nil, fmt.Errorf("file of %d bytes is too short to hold a page index", fileSize)
	}
	tail, err := r.readFrames(ctx, key, fileSize-tailN, tailN)
	if err != nil {
		return nil, err
	}
	indexN := int64(binary.BigEndian.Uint64(tail))
	if indexN <= 0 || indexN > fileSize-ltx.HeaderSize-tailN {
		return nil, fmt.Errorf("invalid page index size %d in a %d-byte file", indexN, fileSize)
	}
	index, err := r.readFrames(ctx, key, fileSize-tailN-indexN, indexN)
	if err != nil {
		return nil, err
	}

	// Count the entries first so that the slices are allocated once, at
	// their final size.
	n := 0
	for b := index; len(b) > 0; n++ {
		var w int
		for i := 0; i < 3 && len(b) > 0; i++ {
			if _, w = binary.Uvarint(b); w <= 0 {
				break
			}
			b = b[w:]
		}
		if w <= 0 {
			break
		}
	}
	x := &ltxIndex{key: key, size: fileSize, pgnos: make([]uint32, 0, n), offsets: make([]int64, 0, n), sizes: make([]int32, 0, n)}
	copy(x.trailer[:], tail[8:])
	for b := index; ; {
		pgno, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("damaged page index: bad page number at index byte %d", len(index)-len(b))
		}
		b = b[n:]
		if pgno == 0 {
			if len(b) != 0 {
				return nil, fmt.Errorf("damaged page index: %d bytes after its end marker", len(b))
			}
			break
		}
		offset, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("damaged page index: bad offset of page %d", pgno)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("damaged page index: bad size of page %d", pgno)
		}
		b = b[n:]
		if pgno > math.MaxUint32 || offset < ltx.HeaderSize || size <= ltx.PageHeaderSize || size > 1<<20 || offset+size > uint64(fileSize-tailN-indexN) {
			return nil, fmt.Errorf("damaged page index: page %d at offset %d size %d does not fit a %d-byte file", pgno, offset, size, fileSize)
		}
		if k := len(x.pgnos); k > 0 && uint32(pgno) <= x.pgnos[k-1] {
			return nil, fmt.Errorf("damaged page index: page %d follows page %d", pgno, x.pgnos[k-1])
		}
		x.pgnos = append(x.pgnos, uint32(pgno))
		x.offsets = append(x.offsets, int64(offset))
		x.sizes = append(x.sizes, int32(size))
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
	last     ltx.Header  // header of the newest file
	// gen is the VFS's count of replica replacements seen when the view was
	// built: views of different gens may be different databases.
	gen uint64
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
	v := &txView{txid: last.MaxTXID, pageSize: hdr.PageSize, commit: hdr.Commit, last: hdr, files: make([]*ltxIndex, len(plan))}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(headerFetchConcurrency)
	for i, info := range plan {
		key := fileKeyOf(info)
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
// views of different TXIDs share the pages they have in common, and the
// replacement of the replica it was read in (txView.gen), as a file written
// again by another database may be listed under the same key.
type pageKey struct {
	gen  uint64
	file ltxFileKey
	pgno uint32
}

// vfsPageCache is an LRU of decoded pages bounded in bytes. Its nodes and
// page buffers are recycled on eviction: a scan then allocates nothing once
// the cache is full, and the heap stays near the cache size instead of
// growing with garbage to twice it between collections.
type vfsPageCache struct {
	mu        sync.Mutex
	limit     int
	used      int
	head      cacheNode // sentinel: head.next is the most recent, head.prev the least
	items     map[pageKey]*cacheNode
	freeNodes []*cacheNode
	freeBufs  [][]byte
}

type cacheNode struct {
	key        pageKey
	data       []byte
	prev, next *cacheNode
}

// maxFreePages bounds the evicted nodes and buffers kept for reuse.
const maxFreePages = 256

func newVFSPageCache(limit int) *vfsPageCache {
	c := &vfsPageCache{limit: limit, items: make(map[pageKey]*cacheNode)}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

func (c *vfsPageCache) unlink(n *cacheNode) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (c *vfsPageCache) pushFront(n *cacheNode) {
	n.prev, n.next = &c.head, c.head.next
	c.head.next.prev = n
	c.head.next = n
}

// with calls use with the cached page under the cache's lock: once
// unlocked, an evicted page's buffer is reused for another page.
func (c *vfsPageCache) with(k pageKey, use func([]byte)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.items[k]
	if !ok {
		return false
	}
	c.unlink(n)
	c.pushFront(n)
	use(n.data)
	return true
}

func (c *vfsPageCache) has(k pageKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[k]
	return ok
}

// alloc returns a page buffer, reusing an evicted one of that size.
func (c *vfsPageCache) alloc(size uint32) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := len(c.freeBufs) - 1; i >= 0 && len(c.freeBufs[i]) == int(size) {
		b := c.freeBufs[i]
		c.freeBufs[i] = nil
		c.freeBufs = c.freeBufs[:i]
		return b
	}
	return make([]byte, size)
}

func (c *vfsPageCache) put(k pageKey, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.items[k]; ok {
		c.unlink(n)
		c.pushFront(n)
		return
	}
	var n *cacheNode
	if i := len(c.freeNodes) - 1; i >= 0 {
		n = c.freeNodes[i]
		c.freeNodes[i] = nil
		c.freeNodes = c.freeNodes[:i]
	} else {
		n = new(cacheNode)
	}
	n.key, n.data = k, data
	c.pushFront(n)
	c.items[k] = n
	c.used += len(data)
	for c.used > c.limit && c.head.prev != n {
		old := c.head.prev
		c.unlink(old)
		delete(c.items, old.key)
		c.used -= len(old.data)
		if len(c.freeBufs) < maxFreePages {
			c.freeBufs = append(c.freeBufs, old.data)
		}
		if len(c.freeNodes) < maxFreePages {
			old.data, old.prev, old.next = nil, nil, nil
			c.freeNodes = append(c.freeNodes, old)
		}
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

// page calls use with page pgno of v, fetching it and its stored
// neighbours on a cache miss; use must not keep the slice. The lock page,
// which SQLite never fills, reads as zeros.
func (r *vfsPageReader) page(ctx context.Context, v *txView, pgno uint32, use func([]byte)) error {
	if pgno == ltx.LockPgno(v.pageSize) {
		use(make([]byte, v.pageSize))
		return nil
	}
	x, j, ok := v.resolve(pgno)
	if !ok {
		return fmt.Errorf("page %d of TXID %s is in no file of its restore plan (%d files)", pgno, v.txid, len(v.files))
	}
	if r.cache.with(pageKey{v.gen, x.key, pgno}, use) {
		return nil
	}
	if b, ok, err := r.hydrator.Load().page(v, pgno, x); err != nil {
		return err
	} else if ok {
		use(b)
		return nil
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
		if owner, _, _ := v.resolve(pg); owner != x || r.cache.has(pageKey{v.gen, x.key, pg}) {
			break
		}
		total += int64(x.sizes[end])
		end++
	}

	bufp := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(bufp)
	buf, err := r.readFramesInto(ctx, x.key, x.offsets[j], total, bufp)
	if errors.Is(err, os.ErrNotExist) {
		return &errLTXFileGone{file: x.key, err: err}
	} else if err != nil {
		return fmt.Errorf("read page %d of TXID %s from %s at offset %d: %w", pgno, v.txid, x.key, x.offsets[j], err)
	}

	// Any damaged frame of the run fails the read, before anything is
	// used or cached.
	pages := make([][]byte, 0, end-j)
	for k := j; k < end; k++ {
		lo := x.offsets[k] - x.offsets[j]
		data, err := decodePageFrame(buf[lo:lo+int64(x.sizes[k])], x.pgnos[k], r.cache.alloc(v.pageSize))
		if err != nil {
			return fmt.Errorf("page %d of TXID %s in %s at offset %d: %w", x.pgnos[k], v.txid, x.key, x.offsets[k], err)
		}
		pages = append(pages, data)
	}
	use(pages[0])
	for i, data := range pages {
		r.cache.put(pageKey{v.gen, x.key, x.pgnos[j+i]}, data)
	}
	return nil
}

// readFrames reads size bytes at offset of a file into a buffer of exactly
// that size: growing one would leave garbage proportional to what is read.
func (r *vfsPageReader) readFrames(ctx context.Context, key ltxFileKey, offset, size int64) ([]byte, error) {
	var buf []byte
	return r.readFramesInto(ctx, key, offset, size, &buf)
}

// frameBufs recycles the buffers of coalesced reads, which the decoded
// pages do not keep, so that a scan does not leave one per request.
var frameBufs = sync.Pool{New: func() any { return new([]byte) }}

// readFramesInto is readFrames reusing *bufp when it is large enough.
func (r *vfsPageReader) readFramesInto(ctx context.Context, key ltxFileKey, offset, size int64, bufp *[]byte) ([]byte, error) {
	rc, err := r.client.OpenLTXFile(ctx, key.level, key.minTXID, key.maxTXID, offset, size)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	if int64(cap(*bufp)) < size {
		*bufp = make([]byte, size)
	}
	buf := (*bufp)[:size]
	if n, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("got %d of %d bytes: %w", n, size, err)
	}
	return buf, nil
}

// decodePageFrame decodes one LTX page frame into data, which holds exactly
// one page, and checks it is the page the index promised.
func decodePageFrame(frame []byte, pgno uint32, data []byte) ([]byte, error) {
	pageSize := len(data)
	var hdr ltx.PageHeader
	if err := hdr.UnmarshalBinary(frame); err != nil {
		return nil, fmt.Errorf("decode page header: %w", err)
	}
	if hdr.Pgno != pgno {
		return nil, fmt.Errorf("frame holds page %d, index says %d: damaged file", hdr.Pgno, pgno)
	}
	if hdr.Flags&ltx.PageHeaderFlagSize == 0 {
		_, page, err := ltx.DecodePageData(frame)
		if err != nil {
			return nil, fmt.Errorf("decode page data: %w", err)
		}
		if len(page) != pageSize {
			return nil, fmt.Errorf("page data is %d bytes, want %d: damaged file", len(page), pageSize)
		}
		copy(data, page)
		return data, nil
	}
	if len(frame) < ltx.PageHeaderSize+4 {
		return nil, fmt.Errorf("frame of %d bytes has no size field: damaged file", len(frame))
	}
	n := binary.BigEndian.Uint32(frame[ltx.PageHeaderSize:])
	block := frame[ltx.PageHeaderSize+4:]
	if int64(n) != int64(len(block)) {
		return nil, fmt.Errorf("frame says %d compressed bytes, index leaves %d: damaged file", n, len(block))
	}
	got, err := lz4.UncompressBlock(block, data)
	if err != nil {
		return nil, fmt.Errorf("decompress page: %w: damaged file", err)
	}
	if got != pageSize {
		return nil, fmt.Errorf("page data is %d bytes, want %d: damaged file", got, pageSize)
	}
	return data, nil
}
