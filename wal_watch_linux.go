//go:build linux

// Watching the WAL for changes with inotify, so syncs follow writes.

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

// walWatcher reports changes to a WAL file through inotify: writes and
// truncation through a watch on the file, and its creation and removal
// through a watch on its directory (the WAL may not exist yet, or be
// recreated). C receives once per batch of changes: until the monitor takes
// a signal the watcher stops reading and the kernel merges repeated events,
// so sustained writes cost a wakeup per sync rather than per commit. C is
// closed if the watcher fails, so the monitor can fall back to polling.
type walWatcher struct {
	C <-chan struct{}

	path  string
	fd    int
	f     *os.File
	done  chan struct{}
	close sync.Once
}

func newWALWatcher(walPath string) (*walWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify init: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(walPath), unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_ONLYDIR); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", filepath.Dir(walPath), err)
	}
	ch := make(chan struct{})
	w := &walWatcher{C: ch, path: walPath, fd: fd, f: os.NewFile(uintptr(fd), "inotify"), done: make(chan struct{})}
	if err := w.watchFile(); err != nil {
		_ = w.f.Close()
		return nil, err
	}
	go w.run(ch, filepath.Base(walPath))
	return w, nil
}

// watchFile watches the WAL for writes, if it exists. A recreated WAL is a
// new inode and needs a new watch; the old one goes away by itself.
func (w *walWatcher) watchFile() error {
	_, err := unix.InotifyAddWatch(w.fd, w.path, unix.IN_MODIFY)
	if errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return fmt.Errorf("inotify watch %s: %w", w.path, err)
	}
	return nil
}

func (w *walWatcher) run(ch chan<- struct{}, name string) {
	defer close(ch)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		modified, created, removed := parseEvents(buf[:n], name)
		if created {
			// Without a watch on the new file its writes would go unseen.
			if err := w.watchFile(); err != nil {
				return
			}
		}
		if !modified && !created && !removed {
			continue
		}
		select {
		case ch <- struct{}{}:
		case <-w.done:
			return
		}
	}
}

// parseEvents reports whether buf holds a write to the watched file (or a
// queue overflow), and whether name was created or removed in the directory.
func parseEvents(buf []byte, name string) (modified, created, removed bool) {
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		start := off + unix.SizeofInotifyEvent
		end := start + int(ev.Len)
		switch {
		case ev.Mask&(unix.IN_MODIFY|unix.IN_Q_OVERFLOW) != 0:
			modified = true
		case ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 && end <= len(buf):
			b := buf[start:end]
			for len(b) > 0 && b[len(b)-1] == 0 {
				b = b[:len(b)-1]
			}
			if string(b) != name {
				break
			}
			if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				created = true
			} else {
				removed = true
			}
		}
		off = end
	}
	return modified, created, removed
}

// Close stops the watcher.
func (w *walWatcher) Close() error {
	var err error
	w.close.Do(func() {
		close(w.done)
		err = w.f.Close()
	})
	return err
}
