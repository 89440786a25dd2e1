// Package objlease is the part of a litestream.Leaser that the object-store
// backends (abs, gs, nats) share: the three lease calls made on the
// backend's litestream.LeaseObject with the TTL and owner its Leaser holds,
// and the name of the lease record under a replica path. A backend embeds
// Methods in its Leaser and writes only the conditional reads and writes.
package objlease

import (
	"context"
	"path"
	"time"

	"github.com/benbjohnson/litestream"
)

// Methods implements AcquireLease, RenewLease and ReleaseLease for a
// backend's Leaser. It reads TTL and owner through pointers to the Leaser's
// own exported fields, so changes made to them after NewLeaser still count.
type Methods struct {
	obj        litestream.LeaseObject
	ttl        *time.Duration
	owner      *string
	defaultTTL time.Duration
}

// New returns the lease calls on obj; a TTL of zero or less means defaultTTL.
func New(obj litestream.LeaseObject, ttl *time.Duration, owner *string, defaultTTL time.Duration) Methods {
	return Methods{obj: obj, ttl: ttl, owner: owner, defaultTTL: defaultTTL}
}

// DefaultTTL is how long a lease lasts unless renewed, when a Leaser's TTL
// is not set: every backend's DefaultLeaseTTL.
const DefaultTTL = 30 * time.Second

// Init sets a new Leaser's TTL and Owner to the defaults (DefaultTTL,
// litestream.DefaultLeaseOwner) and returns its lease calls on obj.
func Init(obj litestream.LeaseObject, ttl *time.Duration, owner *string) Methods {
	*ttl, *owner = DefaultTTL, litestream.DefaultLeaseOwner()
	return New(obj, ttl, owner, DefaultTTL)
}

// AcquireLease takes the lease if it is free, expired or released.
func (m Methods) AcquireLease(ctx context.Context) (*litestream.Lease, error) {
	return litestream.AcquireObjectLease(ctx, m.obj, *m.owner, m.leaseTTL())
}

// RenewLease extends a held lease; ErrLeaseNotHeld if the stored record's
// version (ETag, generation or revision) changed.
func (m Methods) RenewLease(ctx context.Context, lease *litestream.Lease) (*litestream.Lease, error) {
	return litestream.RenewObjectLease(ctx, m.obj, lease, m.leaseTTL())
}

// ReleaseLease marks the lease expired, if still held, for a waiter to take.
func (m Methods) ReleaseLease(ctx context.Context, lease *litestream.Lease) error {
	return litestream.ReleaseObjectLease(ctx, m.obj, lease)
}

func (m Methods) leaseTTL() time.Duration { return TTL(*m.ttl, m.defaultTTL) }

// TTL returns ttl, or def when ttl is zero or less.
func TTL(ttl, def time.Duration) time.Duration {
	if ttl <= 0 {
		return def
	}
	return ttl
}

// Key returns the record name under a replica path, cleaned as the LTX
// file names under it are (path.Join): two spellings of one path, such as
// "db" and "db/", must share the lease as they share the files.
func Key(p, name string) string {
	return path.Join(p, name)
}
