// Tests of the periodic loop.
package internal_test

import (
	"context"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/internal"
)

func TestTick_StopsWhenToldOrCancelled(t *testing.T) {
	calls := 0
	internal.Tick(context.Background(), time.Millisecond, func() bool { calls++; return calls < 3 })
	if calls != 3 {
		t.Fatalf("fn ran %d times after returning false at the third; want 3", calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	calls = 0
	go func() {
		internal.Tick(ctx, time.Millisecond, func() bool { calls++; return true })
		done <- calls
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Tick did not return after its context ended")
	}
}
