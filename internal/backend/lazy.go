// A backend's connection, made on first use.

package backend

import "sync"

// Lazy is a connection (an SDK client, a bucket handle) made on first use
// and kept, which Init and every operation of a backend get; a failed
// attempt is made again on the next use. The zero value has none yet.
type Lazy[T any] struct {
	mu  sync.Mutex
	v   T
	set bool
}

// Get returns the connection, made with open if there is none yet.
func (l *Lazy[T]) Get(open func() (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.set {
		v, err := open()
		if err != nil {
			return v, err
		}
		l.v, l.set = v, true
	}
	return l.v, nil
}

// Close drops the connection, if any, through close; the next Get makes a
// new one.
func (l *Lazy[T]) Close(close func(T) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.set {
		return nil
	}
	v := l.v
	var zero T
	l.v, l.set = zero, false
	return close(v)
}
