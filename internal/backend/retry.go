// Retries of idempotent requests, for the backends whose SDK does not
// retry on its own (nats, webdav).

package backend

import (
	"context"
	"time"
)

// Retry policy: up to RetryMax retries, RetryDelay before the first and
// doubling after each.
const (
	RetryMax   = 3
	RetryDelay = 250 * time.Millisecond
)

// Retry runs fn until it succeeds, fails with an error transient does not
// accept, ctx ends or RetryMax retries have been made.
func Retry(ctx context.Context, transient func(error) bool, fn func() error) error {
	delay := RetryDelay
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt == RetryMax || ctx.Err() != nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}
