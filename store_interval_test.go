// Tests of the interval check behind Store.CompactDB's ErrCompactionTooEarly.
package litestream

import (
	"testing"
	"time"
)

// A file's date is its write time rounded up to the millisecond, so with a
// sub-millisecond interval a file written just before now can be dated after
// now. It was not written in this interval, and the level may compact again.
func TestWrittenThisInterval(t *testing.T) {
	ms := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	dated := func(written time.Time) time.Time { return time.UnixMilli(headerTimestamp(written)) }
	for _, tc := range []struct {
		name     string
		interval time.Duration
		written  time.Time
		now      time.Time
		want     bool
	}{
		{"SubMillisecondIntervalSameMillisecond", time.Nanosecond, ms.Add(300 * time.Microsecond), ms.Add(400 * time.Microsecond), false},
		{"MinuteIntervalWrittenAfterBoundary", time.Minute, ms.Add(10 * time.Second), ms.Add(20 * time.Second), true},
		{"MinuteIntervalWrittenInMillisecondAfterBoundary", time.Minute, ms.Add(time.Microsecond), ms.Add(time.Second), true},
		{"MinuteIntervalWrittenBeforeBoundary", time.Minute, ms.Add(-time.Second), ms.Add(time.Second), false},
		{"DatedFarInTheFuture", time.Minute, ms.Add(time.Hour), ms.Add(time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lvl := &CompactionLevel{Level: 1, Interval: tc.interval}
			if got := writtenThisInterval(dated(tc.written), lvl, tc.now); got != tc.want {
				t.Fatalf("written %s, dated %s, now %s, interval %s: %v, want %v",
					tc.written.Format(time.RFC3339Nano), dated(tc.written).Format(time.RFC3339Nano), tc.now.Format(time.RFC3339Nano), tc.interval, got, tc.want)
			}
		})
	}
}
