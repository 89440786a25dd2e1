// The leasing half of the conformance suite: every Leaser, and the
// create-only writes of its backend's ReplicaClient, against a real server.

package clienttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
)

// NewLeaserFunc returns the client of the replica at path and a leaser for
// it that writes owner into the record and grants leases for ttl. Leasers
// made for the same path contend for one lease.
type NewLeaserFunc func(t testing.TB, path, owner string, ttl time.Duration) (litestream.ReplicaClient, litestream.Leaser)

// RunLeaserUnsupported checks the leaser of a backend without conditional
// writes: a database whose replica is client, leased by leaser, must refuse
// to open with an error matching litestream.ErrLeaseUnsupported that names
// backend.
func RunLeaserUnsupported(t *testing.T, backend string, client litestream.ReplicaClient, leaser litestream.Leaser) {
	t.Helper()
	db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.Leaser = leaser
	err := db.Open()
	if !errors.Is(err, litestream.ErrLeaseUnsupported) || !strings.Contains(err.Error(), backend) {
		t.Fatalf("open with a %s lease: err = %v, want ErrLeaseUnsupported naming %s", backend, err, backend)
	}
}

// RunLeaser runs the leasing suite; each subtest uses its own path.
func RunLeaser(t *testing.T, newLeaser NewLeaserFunc) {
	var n int
	var mu sync.Mutex
	freshPath := func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("lease-%d-%d", time.Now().UnixNano(), n)
	}
	t.Run("AcquireFree", func(t *testing.T) { testAcquireFree(t, newLeaser, freshPath()) })
	t.Run("SecondAcquireFails", func(t *testing.T) { testSecondAcquireFails(t, newLeaser, freshPath()) })
	t.Run("RenewKeepsHolder", func(t *testing.T) { testRenewKeepsHolder(t, newLeaser, freshPath()) })
	t.Run("ReleaseHandsOver", func(t *testing.T) { testReleaseHandsOver(t, newLeaser, freshPath()) })
	t.Run("ExpiredIsTakenAndOldHolderFenced", func(t *testing.T) { testExpiredTakeover(t, newLeaser, freshPath()) })
	t.Run("RaceHasOneWinner", func(t *testing.T) { testRaceOneWinner(t, newLeaser, freshPath()) })
	t.Run("CreateOnlyWrite", func(t *testing.T) { testCreateOnlyWrite(t, newLeaser, freshPath()) })
}

func mustAcquire(t testing.TB, l litestream.Leaser) *litestream.Lease {
	t.Helper()
	lease, err := l.AcquireLease(context.Background())
	if err != nil {
		t.Fatalf("acquire lease: %v", err)
	}
	return lease
}

func testAcquireFree(t *testing.T, newLeaser NewLeaserFunc, path string) {
	_, a := newLeaser(t, path, "a", time.Minute)
	lease := mustAcquire(t, a)
	if lease.Owner != "a" || lease.ETag == "" || lease.Generation < 1 {
		t.Fatalf("lease = %+v, want owner a, an ETag and a generation", lease)
	}
	if ttl := lease.TTL(); ttl <= 0 || ttl > time.Minute || lease.IsExpired() {
		t.Fatalf("TTL = %s, expired = %v; want a live lease of at most 1m", ttl, lease.IsExpired())
	}
}

func testSecondAcquireFails(t *testing.T, newLeaser NewLeaserFunc, path string) {
	_, a := newLeaser(t, path, "a", time.Minute)
	_, b := newLeaser(t, path, "b", time.Minute)
	mustAcquire(t, a)
	_, err := b.AcquireLease(context.Background())
	var exists *litestream.LeaseExistsError
	if !errors.As(err, &exists) {
		t.Fatalf("second acquire: err = %v, want *LeaseExistsError", err)
	} else if exists.Owner != "a" {
		t.Fatalf("LeaseExistsError.Owner = %q, want a", exists.Owner)
	}
}

func testRenewKeepsHolder(t *testing.T, newLeaser NewLeaserFunc, path string) {
	_, a := newLeaser(t, path, "a", time.Minute)
	_, b := newLeaser(t, path, "b", time.Minute)
	lease := mustAcquire(t, a)
	renewed, err := a.RenewLease(context.Background(), lease)
	if err != nil {
		t.Fatalf("renew: %v", err)
	} else if renewed.Generation != lease.Generation || renewed.ETag == lease.ETag {
		t.Fatalf("renewed = %+v after %+v: want the same generation and a new ETag", renewed, lease)
	}
	// A version older than the stored one, of the same holder and
	// generation (as after a retried renew whose first attempt landed
	// late), is still this holder's lease: the backend refuses the write,
	// the leaser recognises its own record and renews over it.
	if _, err := a.RenewLease(context.Background(), lease); err != nil {
		t.Fatalf("renew with an older version of its own lease: %v", err)
	}
	if _, err := b.AcquireLease(context.Background()); err == nil {
		t.Fatal("acquire while renewed: want an error")
	}
}

func testReleaseHandsOver(t *testing.T, newLeaser NewLeaserFunc, path string) {
	_, a := newLeaser(t, path, "a", time.Minute)
	_, b := newLeaser(t, path, "b", time.Minute)
	lease := mustAcquire(t, a)
	if err := a.ReleaseLease(context.Background(), lease); err != nil {
		t.Fatalf("release: %v", err)
	}
	next := mustAcquire(t, b)
	if next.Generation <= lease.Generation {
		t.Fatalf("generation after hand-over = %d, want more than %d", next.Generation, lease.Generation)
	}
	if err := a.ReleaseLease(context.Background(), lease); !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("release of a lease handed over: err = %v, want ErrLeaseNotHeld", err)
	}
}

func testExpiredTakeover(t *testing.T, newLeaser NewLeaserFunc, path string) {
	const ttl = 300 * time.Millisecond
	_, a := newLeaser(t, path, "a", ttl)
	_, b := newLeaser(t, path, "b", ttl)
	old := mustAcquire(t, a)
	deadline := time.Now().Add(10 * time.Second)
	var next *litestream.Lease
	for {
		lease, err := b.AcquireLease(context.Background())
		if err == nil {
			next = lease
			break
		}
		var exists *litestream.LeaseExistsError
		if !errors.As(err, &exists) {
			t.Fatalf("acquire expired lease: %v", err)
		} else if time.Now().After(deadline) {
			t.Fatalf("lease of TTL %s still held after 10s: %v", ttl, err)
		}
		time.Sleep(ttl / 4)
	}
	if next.Generation != old.Generation+1 {
		t.Fatalf("generation after takeover = %d, want %d", next.Generation, old.Generation+1)
	}
	// The paused holder wakes up: its renew is refused by the backend.
	if _, err := a.RenewLease(context.Background(), old); !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("renew by the old holder: err = %v, want ErrLeaseNotHeld", err)
	}
	if _, err := b.RenewLease(context.Background(), next); err != nil {
		t.Fatalf("renew by the new holder: %v", err)
	}
}

func testRaceOneWinner(t *testing.T, newLeaser NewLeaserFunc, path string) {
	const n = 4
	leasers := make([]litestream.Leaser, n)
	for i := range leasers {
		_, leasers[i] = newLeaser(t, path, fmt.Sprintf("p%d", i), time.Minute)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, l := range leasers {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = l.AcquireLease(context.Background()) }()
	}
	wg.Wait()
	var winners int
	for i, err := range errs {
		var exists *litestream.LeaseExistsError
		switch {
		case err == nil:
			winners++
		case !errors.As(err, &exists):
			t.Errorf("p%d: err = %v, want nil or *LeaseExistsError", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d processes acquired the lease at once, want 1 (errors %v)", winners, errs)
	}
}

func testCreateOnlyWrite(t *testing.T, newLeaser NewLeaserFunc, path string) {
	c, _ := newLeaser(t, path, "a", time.Minute)
	if err := c.Init(context.Background()); err != nil {
		t.Fatalf("init: %v", err)
	}
	ctx := litestream.WithCreateOnly(context.Background())
	first := MustLTX(t, 512, 7, 7, 1, time.Now())
	if _, err := c.WriteLTXFile(ctx, 0, 7, 7, bytes.NewReader(first)); err != nil {
		t.Fatalf("create-only write of a new name: %v", err)
	}
	second := MustLTX(t, 512, 7, 7, 2, time.Now())
	_, err := c.WriteLTXFile(ctx, 0, 7, 7, bytes.NewReader(second))
	if !errors.Is(err, litestream.ErrLTXFileExists) {
		t.Fatalf("create-only write over an existing name: err = %v, want ErrLTXFileExists", err)
	}
	if got := MustRead(t, c, 0, 7, 7, 0, 0); !bytes.Equal(got, first) {
		t.Fatal("the stored file changed: a create-only write replaced it")
	}
}
