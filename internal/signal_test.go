// Tests of Signal.
package internal

import "testing"

// Broadcast wakes the waiters before it, not those after.
func TestSignal(t *testing.T) {
	var s Signal
	before := s.Wait()
	s.Broadcast()
	select {
	case <-before:
	default:
		t.Fatal("waiter before Broadcast not woken")
	}
	after := s.Wait()
	select {
	case <-after:
		t.Fatal("waiter after Broadcast woken")
	default:
	}
	s.Broadcast()
	<-after
}
