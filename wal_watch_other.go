//go:build !linux

// No WAL watcher outside Linux: the monitor polls the WAL.

package litestream

import "errors"

// walWatcher is unavailable on this OS; the monitor polls the WAL instead.
type walWatcher struct {
	C <-chan struct{}
}

func newWALWatcher(string) (*walWatcher, error) {
	return nil, errors.ErrUnsupported
}

// Close does nothing.
func (w *walWatcher) Close() error { return nil }
