// vfs_hydrate.go: optional hydration for the VFS: one TXID of the replica
// is restored (checksums verified) to a local file in the background, and
// pages that did not change since that TXID are read from it.

package litestream

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/superfly/ltx"
)

// Hydrator restores one TXID of a replica to a local file in the
// background. Until it completes, and for pages written after its TXID,
// the VFS reads the replica.
type Hydrator struct {
	client ReplicaClient
	path   string
	txID   ltx.TXID
	gen    uint64 // of the VFS view hydrated: later gens are another database
	logger *slog.Logger

	done     chan struct{}
	mu       sync.Mutex
	file     *os.File // set once the restore is complete and verified
	size     int64
	pageSize uint32
	err      error
}

// NewHydrator returns a hydrator restoring txID of client to path, which
// must not exist. Start runs it.
func NewHydrator(client ReplicaClient, path string, txID ltx.TXID, logger *slog.Logger) *Hydrator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Hydrator{client: client, path: path, txID: txID, logger: logger, done: make(chan struct{})}
}

// Start restores in a goroutine until done or ctx ends; Done is closed
// either way and Err tells which.
func (h *Hydrator) Start(ctx context.Context) {
	go func() {
		defer close(h.done)
		err := h.run(ctx)
		h.mu.Lock()
		h.err = err
		h.mu.Unlock()
		if err != nil {
			h.logger.Warn("vfs hydration failed; pages stay served from the replica", "path", h.path, "txid", h.txID, "error", err)
			return
		}
		h.logger.Info("vfs hydration complete", "path", h.path, "txid", h.txID)
	}()
}

func (h *Hydrator) run(ctx context.Context) error {
	opt := NewRestoreOptions()
	opt.OutputPath, opt.TXID = h.path, h.txID
	if err := NewReplicaWithClient(nil, h.client).Restore(ctx, opt); err != nil {
		return fmt.Errorf("hydrate TXID %s to %s: %w", h.txID, h.path, err)
	}
	f, err := os.Open(h.path)
	if err != nil {
		return fmt.Errorf("hydrate TXID %s: %w", h.txID, err)
	}
	fi, err := f.Stat()
	var hdr [100]byte
	if err == nil {
		_, err = f.ReadAt(hdr[:], 0)
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("hydrate TXID %s: %w", h.txID, err)
	}
	pageSize := uint32(binary.BigEndian.Uint16(hdr[16:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file, h.size, h.pageSize = f, fi.Size(), pageSize
	return nil
}

// Done is closed when hydration has completed or failed.
func (h *Hydrator) Done() <-chan struct{} { return h.done }

// Err returns why hydration failed, or nil.
func (h *Hydrator) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// TXID returns the TXID being hydrated.
func (h *Hydrator) TXID() ltx.TXID { return h.txID }

// Close closes the hydrated file and removes it.
func (h *Hydrator) Close() error {
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.file == nil {
		return nil
	}
	err := h.file.Close()
	h.file = nil
	if rerr := os.Remove(h.path); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// page reads page pgno of view v from the hydrated file when that is
// exact: the view is of the same database (gen), at or past the hydrated
// TXID, and the newest file holding the page ends at or before it, so the
// page has not changed between the two TXIDs.
func (h *Hydrator) page(v *txView, pgno uint32, source *ltxIndex) ([]byte, bool, error) {
	if h == nil {
		return nil, false, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	off := int64(pgno-1) * int64(v.pageSize)
	if h.file == nil || v.gen != h.gen || v.txid < h.txID || source.key.maxTXID > h.txID || v.pageSize != h.pageSize || off+int64(v.pageSize) > h.size {
		return nil, false, nil
	}
	data := make([]byte, v.pageSize)
	if _, err := h.file.ReadAt(data, off); err != nil {
		return nil, false, fmt.Errorf("read page %d from hydrated %s (TXID %s): %w", pgno, h.path, h.txID, err)
	}
	return data, true, nil
}
