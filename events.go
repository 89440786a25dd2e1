// events.go is the events API: a program learns that a DB wrote an L0 file,
// that a TXID reached the replica, that a compaction or snapshot finished,
// or that replication stalled or recovered, without polling. Publishing
// costs one atomic load while nobody listens, and never blocks replication:
// a subscriber whose buffer is full misses events and is told how many.
// The library's own waiting and metrics listen to the same events through
// watchers: callbacks run where the event is published.

package litestream

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"
)

// EventType says what an Event reports.
type EventType int

const (
	// EventL0Written: the DB wrote the L0 file MinTXID..MaxTXID locally.
	EventL0Written EventType = iota + 1
	// EventUploaded: the L0 file MinTXID..MaxTXID reached the replica.
	EventUploaded
	// EventCompacted: a compaction wrote MinTXID..MaxTXID at Level.
	EventCompacted
	// EventSnapshot: a snapshot up to MaxTXID was written at SnapshotLevel.
	EventSnapshot
	// EventStalled: uploads have failed for StallSyncIntervals sync
	// intervals; Err is the last error.
	EventStalled
	// EventRecovered: uploads succeed again after failing.
	EventRecovered
	// EventReplicaChanged: a listing of Level found files removed or added
	// by someone else; Err describes what.
	EventReplicaChanged
)

// Events the library publishes only to its own watchers, never to
// subscriptions.
const (
	// eventSyncDone: a local sync that began at Time finished; every
	// commit made before Time is in an L0 file.
	eventSyncDone EventType = -1 - iota
	// eventReplicaPos: the replica's position changed without an upload:
	// it was reset, forgotten or fenced.
	eventReplicaPos
)

var eventTypeNames = map[EventType]string{
	EventL0Written: "l0-written", EventUploaded: "uploaded", EventCompacted: "compacted",
	EventSnapshot: "snapshot", EventStalled: "stalled", EventRecovered: "recovered",
	EventReplicaChanged: "replica-changed",
}

// String returns the event type's short name.
func (t EventType) String() string {
	if s, ok := eventTypeNames[t]; ok {
		return s
	}
	return "unknown"
}

// Event is one state change of a DB's replication.
type Event struct {
	Type    EventType
	DB      string // the database path
	Level   int
	MinTXID ltx.TXID
	MaxTXID ltx.TXID
	Err     error
	Time    time.Time

	// Missed counts the events this subscriber missed just before this one
	// because its buffer was full.
	Missed int
}

// Subscription delivers events on C until Close.
type Subscription struct {
	// C receives the events in the order they happened.
	C <-chan Event

	ch     chan Event
	hub    *eventHub
	mu     sync.Mutex // guards missed and closed, and serializes sends with Close
	missed int
	closed bool
}

// Close stops delivery and closes C. It is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.remove(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

func (s *Subscription) send(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	e.Missed = s.missed
	select {
	case s.ch <- e:
		s.missed = 0
	default:
		s.missed++
	}
}

// DefaultEventBuffer is the buffer of a subscription asked for with 0.
const DefaultEventBuffer = 1024

// eventHub fans events out to subscribers and watchers.
type eventHub struct {
	n        atomic.Int32 // subscribers and watchers, read without the lock by publish
	mu       sync.Mutex
	subs     []*Subscription
	watchers []*eventWatcher
}

// eventWatcher is a library-internal listener. fn runs synchronously in
// the publisher, so it must not block and must not take locks that a
// publisher may hold (replica and position locks are released before any
// event is published).
type eventWatcher struct{ fn func(Event) }

func (h *eventHub) subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	ch := make(chan Event, buffer)
	s := &Subscription{C: ch, ch: ch, hub: h}
	h.mu.Lock()
	h.subs = append(h.subs, s)
	h.countLocked()
	h.mu.Unlock()
	return s
}

// watch adds fn as a watcher until the returned stop is called.
func (h *eventHub) watch(fn func(Event)) (stop func()) {
	w := &eventWatcher{fn: fn}
	h.mu.Lock()
	h.watchers = append(h.watchers, w)
	h.countLocked()
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.watchers = without(h.watchers, w)
		h.countLocked()
	}
}

// without returns list less x in a new array, so that a publisher still
// ranging over the old slice is not disturbed.
func without[T comparable](list []T, x T) []T {
	for i, other := range list {
		if other == x {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

func (h *eventHub) countLocked() { h.n.Store(int32(len(h.subs) + len(h.watchers))) }

func (h *eventHub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = without(h.subs, s)
	h.countLocked()
}

func (h *eventHub) active() bool { return h != nil && h.n.Load() > 0 }

func (h *eventHub) publish(e Event) {
	if !h.active() {
		return
	}
	h.mu.Lock()
	subs, watchers := h.subs, h.watchers
	h.mu.Unlock()
	for _, w := range watchers {
		w.fn(e)
	}
	if e.Type < 0 {
		return // internal: watchers only
	}
	for _, s := range subs {
		s.send(e)
	}
}

// Subscribe returns a subscription to the DB's events with room for buffer
// undelivered events (0: DefaultEventBuffer). Close it when done.
func (db *DB) Subscribe(buffer int) *Subscription {
	return db.events.subscribe(buffer)
}

// Subscribe returns a subscription to the events of every DB of the store,
// present and future, with room for buffer undelivered events
// (0: DefaultEventBuffer). Close it when done.
func (s *Store) Subscribe(buffer int) *Subscription {
	return s.events.subscribe(buffer)
}

// emit publishes an event of the DB to its own and its store's subscribers.
func (db *DB) emit(typ EventType, level int, minTXID, maxTXID ltx.TXID, err error) {
	store := db.storeEvents.Load()
	if !db.events.active() && !store.active() {
		return
	}
	e := Event{Type: typ, DB: db.path, Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Err: err, Time: time.Now()}
	db.events.publish(e)
	store.publish(e)
}

// emitInternal publishes an event meant for the DB's own watchers.
func (db *DB) emitInternal(typ EventType, at time.Time) {
	if db.events.active() {
		db.events.publish(Event{Type: typ, DB: db.path, Time: at})
	}
}

// awaitEvent waits until done reports true, re-checking it after every
// event of the DB and every tick of poll (if positive; onTick runs first).
// done is checked once after the watcher is in place, so no event between
// the caller's last look and the wait is missed.
func (db *DB) awaitEvent(ctx context.Context, poll time.Duration, onTick func(), done func() (bool, error)) error {
	wake := make(chan struct{}, 1)
	stop := db.events.watch(func(Event) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer stop()
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		if ok, err := done(); ok || err != nil {
			return err
		}
		select {
		case <-wake:
		case <-tick:
			if onTick != nil {
				onTick()
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// emit publishes one of the replica's events as its DB's.
func (r *Replica) emit(typ EventType, err error) {
	if r.db != nil {
		r.db.emit(typ, 0, 0, 0, err)
	}
}
