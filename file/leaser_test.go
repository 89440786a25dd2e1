// leaser_test.go: the file leaser against holders paused past their TTL.
package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// A holder paused past its TTL while another took the lease and renewed it
// twice (which removes the superseded versions, the paused holder's next
// among them) must be refused when it wakes and renews.
func TestLeaser_StaleHolderRenewsAfterTakeover(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const ttl = 200 * time.Millisecond
	a := &file.Leaser{Path: dir, TTL: ttl, Owner: "a"}
	b := &file.Leaser{Path: dir, TTL: ttl, Owner: "b"}

	old, err := a.AcquireLease(ctx) // version 1
	if err != nil {
		t.Fatal(err)
	}
	// a is paused past its TTL.
	time.Sleep(ttl + 50*time.Millisecond) // the TTL is the point: the lease must expire
	next, err := b.AcquireLease(ctx)      // version 2
	if err != nil {
		t.Fatalf("b acquires the expired lease: %v", err)
	}
	// b renews twice, as it does every few seconds: versions 3 and 4; the
	// write of version 4 removes version 2, ... of 3 removes 1.
	for i := 0; i < 2; i++ {
		if next, err = b.RenewLease(ctx, next); err != nil {
			t.Fatalf("b renews: %v", err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, file.LeaseDir))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Logf("lease versions on disk before a wakes up: %v", names)

	// a wakes up and renews with its old lease (etag "1"): the backend must
	// refuse, because b holds the lease.
	renewed, err := a.RenewLease(ctx, old)
	if !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("renew by the paused old holder: lease=%+v err=%v, want ErrLeaseNotHeld (b holds generation %d)", renewed, err, next.Generation)
	}
}

// After lock/ is removed by hand (the error for an unreadable record
// suggests it), version numbers start again at 1. A holder's stale version
// must not match another holder's record of the same number: its renewal
// would be accepted on top of the other's, and both would hold the lease.
func TestLeaser_VersionReusedAfterLockDirRemoved(t *testing.T) {
	ctx := context.Background()
	replicaPath := filepath.Join(t.TempDir(), "replica")
	la, lb := file.NewLeaser(replicaPath), file.NewLeaser(replicaPath)
	la.Owner, lb.Owner = "a", "b"
	la.TTL, lb.TTL = time.Minute, time.Minute

	leaseA, err := la.AcquireLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // A renews: its record is version 3
		if leaseA, err = la.RenewLease(ctx, leaseA); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(replicaPath, file.LeaseDir)); err != nil {
		t.Fatal(err)
	}
	leaseB, err := lb.AcquireLease(ctx) // version 1
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // B renews up to version 3
		if leaseB, err = lb.RenewLease(ctx, leaseB); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := la.RenewLease(ctx, leaseA); err == nil {
		t.Fatalf("A renewed its lease on top of B's record (B holds generation %d, etag %s)", leaseB.Generation, leaseB.ETag)
	}
	if _, err := lb.RenewLease(ctx, leaseB); err != nil {
		t.Fatalf("B, the holder, cannot renew: %v", err)
	}
}
