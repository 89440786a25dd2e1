// Tick: the loop of the library's periodic background work.

package internal

import (
	"context"
	"time"
)

// Tick calls fn at each tick of interval, the first one interval from now,
// until ctx ends or fn returns false.
func Tick(ctx context.Context, interval time.Duration, fn func() bool) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if !fn() {
			return
		}
	}
}
