// The Replica's side of leasing: taking the lease before the first upload,
// renewing it in the background, checking it with the backend before each
// batch, and stopping for good (fencing) once it is lost or a write finds
// another writer's file.

package litestream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// DefaultLeaseRetryInterval is how often a Replica in LeaseWait mode asks
// for a held lease again, at most.
const DefaultLeaseRetryInterval = 1 * time.Second

// replicaLease is the lease state of a Replica with a Leaser.
type replicaLease struct {
	acquireMu sync.Mutex // one acquisition at a time; held while waiting

	mu       sync.Mutex // guards the fields below; held across a renew call
	lease    *Lease     // nil until acquired, and after release
	ttl      time.Duration
	lost     error                          // set once the lease is lost; the replica never writes again
	lostView atomic.Pointer[LeaseLostError] // lost, readable during a renew call
	closed   bool                           // released by Close: compaction still running must not retake it
	stop     context.CancelFunc
	done     chan struct{}
}

// LeaseLostError reports that this process may no longer write to the
// replica: its lease was taken over, or a write found another writer's
// file. It matches ErrLeaseNotHeld.
type LeaseLostError struct {
	Owner string // this process's owner string
	Err   error  // what showed it
}

func (e *LeaseLostError) Error() string {
	return fmt.Sprintf("%s: replication by %s stopped, another writer may have taken the replica over (restart to wait for the lease again): %s", ErrLeaseNotHeld, e.Owner, e.Err)
}

// Unwrap returns the cause.
func (e *LeaseLostError) Unwrap() []error { return []error{ErrLeaseNotHeld, e.Err} }

// errLeaseClosed is returned by writes after Close released the lease.
var errLeaseClosed = fmt.Errorf("replica closed: %w", ErrLeaseNotHeld)

// reopenLease lets a DB opened again after Close take the lease again, as
// a new process would: a lease lost before Close no longer fences it (its
// first sync compares with the replica under the new lease).
func (r *Replica) reopenLease() {
	r.lease.mu.Lock()
	defer r.lease.mu.Unlock()
	r.lease.closed = false
	if r.lease.lost != nil {
		r.lease.lost, r.lease.lease = nil, nil
		r.lease.lostView.Store(nil)
	}
}

// leaseLost returns the error that fenced the replica, or nil. It does not
// wait for a renew in progress.
func (r *Replica) leaseLost() error {
	if lost := r.lease.lostView.Load(); lost != nil {
		return lost
	}
	return nil
}

// leaseWanted reports a Leaser whose lease this process does not hold (yet
// or any more).
func (r *Replica) leaseWanted() bool {
	if r.Leaser == nil {
		return false
	}
	r.lease.mu.Lock()
	defer r.lease.mu.Unlock()
	return r.lease.lease == nil
}

// acquireLease takes the lease if the replica has a Leaser and does not hold
// it yet. With LeaseWait it retries until the lease is free or ctx ends;
// otherwise a held lease is returned as *LeaseExistsError.
func (r *Replica) acquireLease(ctx context.Context) error {
	return r.acquireLeaseWaiting(ctx, r.LeaseWait)
}

// acquireLeaseWaiting takes the lease, retrying while another process
// holds it if wait is set.
func (r *Replica) acquireLeaseWaiting(ctx context.Context, wait bool) error {
	if r.Leaser == nil {
		return nil
	}
	r.lease.acquireMu.Lock()
	defer r.lease.acquireMu.Unlock()

	r.lease.mu.Lock()
	held, lost, closed := r.lease.lease != nil, r.lease.lost, r.lease.closed
	r.lease.mu.Unlock()
	if lost != nil {
		return lost
	} else if closed {
		return errLeaseClosed
	} else if held {
		return nil
	}

	var waitLogged bool
	for {
		lease, err := r.Leaser.AcquireLease(ctx)
		if err == nil {
			r.holdLease(lease)
			return nil
		}
		var exists *LeaseExistsError
		if !wait || ctx.Err() != nil || errors.Is(err, ErrLeaseUnsupported) {
			return fmt.Errorf("acquire %s lease: %w", r.Leaser.Type(), err)
		}
		if errors.As(err, &exists) && !waitLogged {
			waitLogged = true
			r.Logger().Info("waiting for the replica's lease", "holder", exists.Owner, "expires_at", exists.ExpiresAt)
		} else if !errors.As(err, &exists) {
			r.Logger().Warn("acquire lease failed, retrying", "error", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s lease: %w", r.Leaser.Type(), context.Cause(ctx))
		case <-time.After(r.leaseRetryInterval()):
		}
	}
}

// holdLease records a newly acquired lease and starts renewing it.
func (r *Replica) holdLease(lease *Lease) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.lease.mu.Lock()
	r.lease.lease, r.lease.ttl = lease, lease.TTL()
	r.lease.stop, r.lease.done = cancel, done
	r.lease.mu.Unlock()
	r.forgetPos() // list the replica again: the last holder may have written since
	r.Logger().Info("lease acquired", "owner", lease.Owner, "generation", lease.Generation, "ttl", lease.TTL().Round(time.Millisecond))
	go func() { defer close(done); r.renewLoop(ctx) }()
}

func (r *Replica) leaseRetryInterval() time.Duration {
	if r.LeaseRenewInterval > 0 {
		return min(r.LeaseRenewInterval, DefaultLeaseRetryInterval)
	}
	return DefaultLeaseRetryInterval
}

// renewInterval returns LeaseRenewInterval, or a third of the TTL.
func (r *Replica) renewInterval() time.Duration {
	if r.LeaseRenewInterval > 0 {
		return r.LeaseRenewInterval
	}
	r.lease.mu.Lock()
	defer r.lease.mu.Unlock()
	return max(r.lease.ttl/3, 10*time.Millisecond)
}

// renewLoop renews the lease every renew interval until ctx ends or the
// lease is lost. A failed renew is retried at the next tick; uploads wait
// meanwhile, as each batch renews first.
func (r *Replica) renewLoop(ctx context.Context) {
	failing := false
	internal.Tick(ctx, r.renewInterval(), func() bool {
		if err := r.renewLease(ctx); err != nil {
			if r.leaseLost() != nil || ctx.Err() != nil {
				return false
			}
			if !failing {
				r.Logger().Warn("renew lease failed, retrying", "error", err)
			}
			failing = true
		} else if failing {
			r.Logger().Info("lease renewed again")
			failing = false
		}
		return true
	})
}

// renewLease renews the held lease with the backend. The backend's
// precondition decides whether this process still holds it, even after an
// outage longer than the TTL: the renewal is conditional on the record
// this process last wrote, which any takeover replaces. Its own clock
// does not decide: it would stop a holder nobody replaced for good.
func (r *Replica) renewLease(ctx context.Context) error {
	r.lease.mu.Lock()
	defer r.lease.mu.Unlock()
	if r.lease.lost != nil {
		return r.lease.lost
	} else if r.lease.lease == nil {
		return ErrLeaseNotHeld
	}
	lease, err := r.Leaser.RenewLease(ctx, r.lease.lease)
	var exists *LeaseExistsError
	switch {
	case errors.Is(err, ErrLeaseNotHeld) || errors.As(err, &exists):
		r.fenceLocked(fmt.Errorf("renew lease generation %d: %w", r.lease.lease.Generation, err))
		return r.lease.lost
	case err != nil:
		return fmt.Errorf("renew %s lease: %w", r.Leaser.Type(), err)
	}
	r.lease.lease = lease
	return nil
}

// checkLease makes sure, with the backend, that this process holds the
// lease right before it writes or deletes: it takes the lease if it has
// none yet, and renews it (a conditional write) otherwise. Without a Leaser
// it does nothing.
func (r *Replica) checkLease(ctx context.Context) error {
	if r.Leaser == nil {
		return nil
	}
	r.lease.mu.Lock()
	held, lost := r.lease.lease != nil, r.lease.lost
	r.lease.mu.Unlock()
	if lost != nil {
		return lost
	} else if !held {
		return r.acquireLease(ctx)
	}
	return r.renewLease(ctx)
}

// fenceLocked stops the replica for good, logs why once and wakes waiters so
// that they return the error. Caller holds lease.mu.
func (r *Replica) fenceLocked(cause error) {
	if r.lease.lost != nil {
		return
	}
	owner := ""
	if r.lease.lease != nil {
		owner = r.lease.lease.Owner
	}
	lost := &LeaseLostError{Owner: owner, Err: cause}
	r.lease.lost = lost
	r.lease.lostView.Store(lost)
	r.lease.lease = nil
	if r.lease.stop != nil {
		r.lease.stop()
	}
	r.Logger().Error("replica fenced: another writer holds the lease, replication stopped", "error", cause)
	r.posChanged()
}

// fence stops the replica for good; see fenceLocked.
func (r *Replica) fence(cause error) {
	r.lease.mu.Lock()
	defer r.lease.mu.Unlock()
	r.fenceLocked(cause)
}

// releaseLease stops renewing and gives the lease up, so that a waiting
// process takes over at once instead of after the TTL.
func (r *Replica) releaseLease(ctx context.Context) error {
	if r.Leaser == nil {
		return nil
	}
	r.lease.mu.Lock()
	lease, stop, done := r.lease.lease, r.lease.stop, r.lease.done
	r.lease.lease, r.lease.stop, r.lease.done, r.lease.closed = nil, nil, nil, true
	r.lease.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if lease == nil {
		return nil
	}
	if err := r.Leaser.ReleaseLease(context.WithoutCancel(ctx), lease); err != nil && !errors.Is(err, ErrLeaseNotHeld) {
		return fmt.Errorf("release %s lease: %w", r.Leaser.Type(), err)
	}
	r.Logger().Info("lease released", "owner", lease.Owner, "generation", lease.Generation)
	return nil
}

// writeL0 uploads a local L0 file. With a Leaser the upload is create-only:
// a file already stored under that name is either this process's own
// earlier attempt (a retry after a lost response: identical bytes, success)
// or another writer's, which fences the replica.
func (r *Replica) writeL0(ctx context.Context, minTXID, maxTXID ltx.TXID, f *os.File) error {
	// Through the index, so that it knows the file, but straight to Client:
	// the lease was checked for the whole batch.
	x := r.indexed()
	if r.Leaser == nil {
		_, err := x.writeVia(ctx, r.Client, 0, minTXID, maxTXID, f)
		return err
	}
	_, err := x.writeVia(WithCreateOnly(ctx), r.Client, 0, minTXID, maxTXID, f)
	if !errors.Is(err, ErrLTXFileExists) {
		return err
	}
	same, cerr := r.sameAsRemote(ctx, 0, minTXID, maxTXID, f)
	if cerr != nil {
		return fmt.Errorf("%w; compare with the stored file: %w", err, cerr)
	} else if same {
		return nil
	}
	r.fence(fmt.Errorf("L0 %s-%s on the replica was written by another process", minTXID, maxTXID))
	return r.leaseLost()
}

// sameAsRemote reports whether the stored file has exactly local's bytes.
func (r *Replica) sameAsRemote(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, local *os.File) (bool, error) {
	if _, err := local.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	rc, err := r.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, 0, 0)
	if err != nil {
		return false, err
	}
	defer func() { _ = rc.Close() }()
	return readersEqual(local, rc)
}

// readersEqual compares two streams chunk by chunk.
func readersEqual(a, b io.Reader) (bool, error) {
	bufA, bufB := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, errA := io.ReadFull(a, bufA)
		nb, errB := io.ReadFull(b, bufB)
		if errA != nil && errA != io.EOF && errA != io.ErrUnexpectedEOF {
			return false, errA
		} else if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return false, errB
		}
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		if errA != nil || errB != nil {
			return errA != nil && errB != nil, nil
		}
	}
}

// fencedClient checks the lease with the backend before every write and
// delete of the client it wraps. Compaction, snapshots and retention write
// through it, so a process that lost its lease cannot replace or delete
// another writer's files, except within the moment between the check and the
// request.
type fencedClient struct {
	ReplicaClient
	r *Replica
}

// writeClient returns the client that compaction, snapshots and retention
// write and delete through: the Client itself without a Leaser.
func (r *Replica) writeClient() ReplicaClient {
	if r.Leaser == nil {
		return r.Client
	}
	return &fencedClient{ReplicaClient: r.Client, r: r}
}

func (c *fencedClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, rd io.Reader) (*ltx.FileInfo, error) {
	if err := c.r.checkLease(ctx); err != nil {
		return nil, fmt.Errorf("write L%d %s-%s: %w", level, minTXID, maxTXID, err)
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, rd)
}

func (c *fencedClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	if err := c.r.checkLease(ctx); err != nil {
		return fmt.Errorf("delete %d ltx files: %w", len(a), err)
	}
	return c.ReplicaClient.DeleteLTXFiles(ctx, a)
}

func (c *fencedClient) DeleteAll(ctx context.Context) error {
	if err := c.r.checkLease(ctx); err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	return c.ReplicaClient.DeleteAll(ctx)
}
