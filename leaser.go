// Leases: the Leaser interface backends implement so that only one process
// at a time writes to a replica, and the create-only write mode that fences a
// writer which lost its lease.

package litestream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrLeaseNotHeld is returned when a lease was lost: another process renewed
// past it or took it over, so this one must stop writing.
var ErrLeaseNotHeld = errors.New("lease not held")

// ErrLeaseUnsupported is returned when a lease is asked of a backend that has
// no conditional writes to build one on (sftp, webdav).
var ErrLeaseUnsupported = errors.New("backend cannot hold a lease")

// ErrLTXFileExists is returned by a create-only write (see WithCreateOnly)
// when a file of that name is already stored. It matches os.ErrExist.
var ErrLTXFileExists = fmt.Errorf("ltx file already exists: %w", os.ErrExist)

// LeaseExistsError is returned by AcquireLease while another owner holds an
// unexpired lease.
type LeaseExistsError struct {
	Owner     string
	ExpiresAt time.Time
}

// Error names the holder and its expiry.
func (e *LeaseExistsError) Error() string {
	if e.Owner != "" {
		return fmt.Sprintf("lease already held by %s until %s", e.Owner, e.ExpiresAt.Format(time.RFC3339))
	}
	return fmt.Sprintf("lease already held until %s", e.ExpiresAt.Format(time.RFC3339))
}

// Leaser grants one process at a time the right to write to a replica. Each
// call is one conditional write checked by the backend (an ETag, generation
// or revision precondition), so a holder whose clock is wrong or who was
// paused finds out from the backend, not from its own clock.
type Leaser interface {
	// Type returns the backend's short name, e.g. "s3".
	Type() string

	// AcquireLease takes the lease if it is free or expired, and returns a
	// *LeaseExistsError while another owner holds it.
	AcquireLease(ctx context.Context) (*Lease, error)

	// RenewLease extends a held lease. It returns ErrLeaseNotHeld when the
	// lease stored is no longer this one.
	RenewLease(ctx context.Context, lease *Lease) (*Lease, error)

	// ReleaseLease gives the lease up so that a waiting process takes over
	// at once. It returns ErrLeaseNotHeld when another owner holds it.
	ReleaseLease(ctx context.Context, lease *Lease) error
}

// Lease is a held lease as stored by a Leaser.
type Lease struct {
	// Generation grows by one each time the lease changes hands.
	Generation int64 `json:"generation"`
	// ExpiresAt is when the lease lapses unless renewed, by the holder's clock.
	ExpiresAt time.Time `json:"expires_at"`
	// Owner names the holder, by default "hostname:pid"; for people only.
	Owner string `json:"owner,omitempty"`
	// ETag is the backend's version of the stored lease (an ETag, object
	// generation or revision) that the next renew or release must match.
	ETag string `json:"-"`
}

// IsExpired reports whether the lease's expiry has passed by the local clock.
func (l *Lease) IsExpired() bool { return time.Now().After(l.ExpiresAt) }

// TTL returns the time left until the lease expires, by the local clock.
func (l *Lease) TTL() time.Duration { return time.Until(l.ExpiresAt) }

// DefaultLeaseOwner returns "hostname:pid", or "pid-N" without a hostname.
func DefaultLeaseOwner() string {
	if host, _ := os.Hostname(); host != "" {
		return fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return fmt.Sprintf("pid-%d", os.Getpid())
}

type createOnlyKey struct{}

// WithCreateOnly returns a context under which ReplicaClient.WriteLTXFile
// must not replace an existing file: backends with leasers store the file
// only if its name is free (S3 If-None-Match: *, GCS DoesNotExist, Azure
// If-None-Match: *, a hard link on the file backend) and otherwise return an
// error matching ErrLTXFileExists. A Replica with a Leaser uploads L0 files
// this way, so a fenced writer can never replace another's TXID file.
func WithCreateOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, createOnlyKey{}, true)
}

// IsCreateOnly reports whether ctx asks for create-only writes.
func IsCreateOnly(ctx context.Context) bool {
	v, _ := ctx.Value(createOnlyKey{}).(bool)
	return v
}

// UnsupportedLeaser is the Leaser of a backend that cannot hold a lease:
// every call returns an error matching ErrLeaseUnsupported that names the
// backend.
type UnsupportedLeaser struct {
	Backend string // e.g. "sftp"
}

// Type returns the backend's name.
func (l UnsupportedLeaser) Type() string { return l.Backend }

func (l UnsupportedLeaser) err() error {
	return fmt.Errorf("%s: %w: it has no conditional writes to fence a second writer with; run one writer per replica path, or use the file, s3, gs, abs or nats backend", l.Backend, ErrLeaseUnsupported)
}

// AcquireLease returns an error matching ErrLeaseUnsupported.
func (l UnsupportedLeaser) AcquireLease(context.Context) (*Lease, error) { return nil, l.err() }

// RenewLease returns an error matching ErrLeaseUnsupported.
func (l UnsupportedLeaser) RenewLease(context.Context, *Lease) (*Lease, error) { return nil, l.err() }

// ReleaseLease returns an error matching ErrLeaseUnsupported.
func (l UnsupportedLeaser) ReleaseLease(context.Context, *Lease) error { return l.err() }

// ErrLeaseConflict is returned by a LeaseObject whose precondition failed:
// the record exists on create, or is missing or changed on replace.
var ErrLeaseConflict = errors.New("lease record changed")

// LeaseObject is one stored lease record with the conditional writes a
// backend offers; AcquireObjectLease, RenewObjectLease and
// ReleaseObjectLease build a Leaser's methods on it.
type LeaseObject interface {
	// ReadLease returns the record and its version, or an error matching
	// os.ErrNotExist.
	ReadLease(ctx context.Context) (data []byte, etag string, err error)
	// CreateLease stores the record only if none exists, else ErrLeaseConflict.
	CreateLease(ctx context.Context, data []byte) (etag string, err error)
	// ReplaceLease stores the record only if the stored one has version etag,
	// else ErrLeaseConflict.
	ReplaceLease(ctx context.Context, data []byte, etag string) (newETag string, err error)
}

// AcquireObjectLease takes the lease stored in obj if it is missing, expired
// or released, for ttl. Two processes racing for it both write
// conditionally, so one of them gets *LeaseExistsError.
func AcquireObjectLease(ctx context.Context, obj LeaseObject, owner string, ttl time.Duration) (*Lease, error) {
	data, etag, err := obj.ReadLease(ctx)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read lease: %w", err)
	}
	lease := &Lease{Generation: 1, Owner: owner}
	if err == nil {
		var cur Lease
		if err := json.Unmarshal(data, &cur); err != nil {
			return nil, fmt.Errorf("decode lease record (delete it if no process holds the lease): %w", err)
		} else if !cur.IsExpired() {
			return nil, &LeaseExistsError{Owner: cur.Owner, ExpiresAt: cur.ExpiresAt}
		}
		lease.Generation = cur.Generation + 1
	}
	lease.ExpiresAt = time.Now().Add(ttl)
	data, _ = json.Marshal(lease)
	if etag == "" {
		lease.ETag, err = obj.CreateLease(ctx, data)
	} else {
		lease.ETag, err = obj.ReplaceLease(ctx, data, etag)
	}
	if errors.Is(err, ErrLeaseConflict) {
		stored, storedETag, rerr := obj.ReadLease(ctx)
		if rerr == nil && bytes.Equal(stored, data) {
			lease.ETag = storedETag // our own write, retried after a lost response
			return lease, nil
		}
		// Another process won the race; report it as the holder.
		exists := &LeaseExistsError{}
		var cur Lease
		if rerr == nil && json.Unmarshal(stored, &cur) == nil {
			exists.Owner, exists.ExpiresAt = cur.Owner, cur.ExpiresAt
		}
		return nil, exists
	} else if err != nil {
		return nil, fmt.Errorf("write lease generation %d: %w", lease.Generation, err)
	}
	return lease, nil
}

// RenewObjectLease extends lease by ttl if obj still holds exactly it, and
// returns ErrLeaseNotHeld otherwise.
func RenewObjectLease(ctx context.Context, obj LeaseObject, lease *Lease, ttl time.Duration) (*Lease, error) {
	if lease == nil || lease.ETag == "" {
		return nil, fmt.Errorf("renew lease: no lease held: %w", ErrLeaseNotHeld)
	}
	next := &Lease{Generation: lease.Generation, Owner: lease.Owner, ExpiresAt: time.Now().Add(ttl)}
	data, _ := json.Marshal(next)
	etag, err := obj.ReplaceLease(ctx, data, lease.ETag)
	if errors.Is(err, ErrLeaseConflict) {
		stored, storedETag, rerr := obj.ReadLease(ctx)
		switch {
		case rerr != nil && !errors.Is(rerr, os.ErrNotExist):
			// Unknown yet: the caller retries, and gives up after the TTL.
			return nil, fmt.Errorf("renew lease generation %d: read it after a refused write: %w", lease.Generation, rerr)
		case rerr == nil && bytes.Equal(stored, data):
			next.ETag = storedETag // our own write, retried after a lost response
			return next, nil
		case rerr == nil && isOwnRenewal(stored, lease):
			// An earlier renew of ours landed late (a retried request whose
			// first attempt was still in flight). Only the holder writes a
			// generation after acquiring it, so the lease is still ours.
			if etag, err := obj.ReplaceLease(ctx, data, storedETag); err == nil {
				next.ETag = etag
				return next, nil
			}
		}
		return nil, fmt.Errorf("renew lease generation %d: %w", lease.Generation, ErrLeaseNotHeld)
	} else if err != nil {
		return nil, fmt.Errorf("renew lease generation %d: %w", lease.Generation, err)
	}
	next.ETag = etag
	return next, nil
}

// isOwnRenewal reports whether a stored record is a live renewal of lease:
// same generation and owner. A takeover always writes a new generation.
func isOwnRenewal(stored []byte, lease *Lease) bool {
	var cur Lease
	return json.Unmarshal(stored, &cur) == nil && cur.Generation == lease.Generation &&
		cur.Owner == lease.Owner && !cur.ExpiresAt.IsZero()
}

// ReleaseObjectLease marks lease expired in obj, if obj still holds it, so
// that the next AcquireObjectLease takes it at once. The record stays, so
// generations keep growing.
func ReleaseObjectLease(ctx context.Context, obj LeaseObject, lease *Lease) error {
	if lease == nil || lease.ETag == "" {
		return fmt.Errorf("release lease: no lease held: %w", ErrLeaseNotHeld)
	}
	released := &Lease{Generation: lease.Generation, Owner: lease.Owner}
	data, _ := json.Marshal(released)
	if _, err := obj.ReplaceLease(ctx, data, lease.ETag); errors.Is(err, ErrLeaseConflict) {
		return fmt.Errorf("release lease generation %d: %w", lease.Generation, ErrLeaseNotHeld)
	} else if err != nil {
		return fmt.Errorf("release lease generation %d: %w", lease.Generation, err)
	}
	return nil
}
