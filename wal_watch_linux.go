//go:build linux

// wal_watch_linux.go wakes a DB's monitor when its WAL changes, through one
// inotify instance shared by every DB of the process. One instance per DB
// would hit the kernel's default of 128 instances per user at the 129th
// database (the rest would fall back to polling), and cost a descriptor
// and a goroutine each.

package litestream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// walWatcher reports changes to a WAL file: writes and truncation through a
// watch on the file, and its creation and removal through a watch on its
// directory (the WAL may not exist yet, or be recreated). C holds at most one
// pending signal, so sustained writes cost a wakeup per sync rather than per
// commit. C is closed if watching fails, so the monitor can fall back to
// polling.
type walWatcher struct {
	C <-chan struct{}

	ch       chan struct{}
	path     string
	name     string
	dirWD    int32
	fileWDs  map[int32]bool // the WAL's watches: a recreated WAL is a new inode
	closed   bool           // guarded by inotifyHub.mu
	hubOwner *inotifyHub
}

// inotifyHub is the process's inotify instance and the watchers of each
// watch descriptor.
type inotifyHub struct {
	mu   sync.Mutex
	fd   int
	f    *os.File
	byWD map[int32][]*walWatcher
}

var sharedInotify inotifyHub

// startLocked creates the instance and its reader on first use, or again
// after the reader failed.
func (h *inotifyHub) startLocked() error {
	if h.f != nil {
		return nil
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify init: %w", err)
	}
	h.fd, h.f, h.byWD = fd, os.NewFile(uintptr(fd), "inotify"), make(map[int32][]*walWatcher)
	go h.run(h.f)
	return nil
}

func newWALWatcher(walPath string) (*walWatcher, error) {
	h := &sharedInotify
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.startLocked(); err != nil {
		return nil, err
	}
	dir := filepath.Dir(walPath)
	wd, err := unix.InotifyAddWatch(h.fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_ONLYDIR|unix.IN_MASK_ADD)
	if err != nil {
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	ch := make(chan struct{}, 1)
	w := &walWatcher{C: ch, ch: ch, path: walPath, name: filepath.Base(walPath), dirWD: int32(wd), fileWDs: make(map[int32]bool), hubOwner: h}
	h.byWD[w.dirWD] = append(h.byWD[w.dirWD], w)
	if err := w.watchFileLocked(); err != nil {
		w.closeLocked()
		return nil, err
	}
	return w, nil
}

// watchFileLocked watches the WAL for writes, if it exists.
func (w *walWatcher) watchFileLocked() error {
	h := w.hubOwner
	wd, err := unix.InotifyAddWatch(h.fd, w.path, unix.IN_MODIFY|unix.IN_MASK_ADD)
	if errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return fmt.Errorf("inotify watch %s: %w", w.path, err)
	}
	if !w.fileWDs[int32(wd)] {
		w.fileWDs[int32(wd)] = true
		h.byWD[int32(wd)] = append(h.byWD[int32(wd)], w)
	}
	return nil
}

// signal wakes the monitor unless a wakeup is already pending.
func (w *walWatcher) signal() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

func (h *inotifyHub) run(f *os.File) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := f.Read(buf)
		if err != nil {
			h.fail(f)
			return
		}
		h.dispatch(buf[:n])
	}
}

// fail closes every watcher after the reader failed, so that their
// monitors poll; the next watcher starts a new instance.
func (h *inotifyHub) fail(f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != f {
		return
	}
	for _, ws := range h.byWD {
		for _, w := range ws {
			w.closeLocked()
		}
	}
	_ = h.f.Close()
	h.f, h.byWD = nil, nil
}

// dispatch signals the watchers of a batch of events.
func (h *inotifyHub) dispatch(buf []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		start := off + unix.SizeofInotifyEvent
		end := min(start+int(ev.Len), len(buf))
		name := string(trimNUL(buf[start:end]))
		off = start + int(ev.Len)

		switch {
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			for _, ws := range h.byWD { // events were lost: wake everyone
				for _, w := range ws {
					w.signal()
				}
			}
		case ev.Mask&unix.IN_IGNORED != 0:
			for _, w := range h.byWD[ev.Wd] {
				delete(w.fileWDs, ev.Wd)
			}
			delete(h.byWD, ev.Wd)
		case ev.Mask&unix.IN_MODIFY != 0:
			for _, w := range h.byWD[ev.Wd] {
				if w.fileWDs[ev.Wd] {
					w.signal()
				}
			}
		case ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
			for _, w := range h.byWD[ev.Wd] {
				if w.dirWD != ev.Wd || w.name != name {
					continue
				}
				if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
					// Without a watch on the new file its writes would go unseen.
					if err := w.watchFileLocked(); err != nil {
						w.closeLocked()
						continue
					}
				}
				w.signal()
			}
		}
	}
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// Close stops the watcher.
func (w *walWatcher) Close() error {
	h := w.hubOwner
	h.mu.Lock()
	defer h.mu.Unlock()
	w.closeLocked()
	return nil
}

// closeLocked removes the watcher from its watches, removing a watch from
// the kernel when its last watcher goes, and closes C.
func (w *walWatcher) closeLocked() {
	if w.closed {
		return
	}
	w.closed = true
	close(w.ch)
	h := w.hubOwner
	wds := []int32{w.dirWD}
	for wd := range w.fileWDs {
		wds = append(wds, wd)
	}
	for _, wd := range wds {
		ws := h.byWD[wd]
		for i, other := range ws {
			if other == w {
				ws = append(ws[:i:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) > 0 {
			h.byWD[wd] = ws
			continue
		}
		if _, ok := h.byWD[wd]; ok && h.f != nil {
			_, _ = unix.InotifyRmWatch(h.fd, uint32(wd))
		}
		delete(h.byWD, wd)
	}
}
