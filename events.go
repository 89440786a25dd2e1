// events.go is the events API: a program learns that a DB wrote an L0 file,
// that a TXID reached the replica, that a compaction or snapshot finished,
// or that replication stalled or recovered, without polling. Publishing
// costs one atomic load while nobody listens, and never blocks replication:
// a subscriber whose buffer is full misses events and is told how many.

package litestream

import (
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

// eventHub fans events out to subscribers.
type eventHub struct {
	n    atomic.Int32 // subscribers, read without the lock by publish
	mu   sync.Mutex
	subs []*Subscription
}

func (h *eventHub) subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	ch := make(chan Event, buffer)
	s := &Subscription{C: ch, ch: ch, hub: h}
	h.mu.Lock()
	h.subs = append(h.subs, s)
	h.n.Store(int32(len(h.subs)))
	h.mu.Unlock()
	return s
}

func (h *eventHub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, other := range h.subs {
		if other == s {
			h.subs = append(h.subs[:i:i], h.subs[i+1:]...)
			break
		}
	}
	h.n.Store(int32(len(h.subs)))
}

func (h *eventHub) active() bool { return h != nil && h.n.Load() > 0 }

func (h *eventHub) publish(e Event) {
	if !h.active() {
		return
	}
	h.mu.Lock()
	subs := h.subs
	h.mu.Unlock()
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
