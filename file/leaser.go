// Leaser for the file backend: the lease record is the newest file in
// <path>/lock/, and every change creates the next version exclusively.

package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
)

// Lease defaults.
const (
	DefaultLeaseTTL = 30 * time.Second
	LeaseDir        = "lock" // under the replica path
	LeaserType      = "file"
)

var _ litestream.Leaser = (*Leaser)(nil)

// Leaser holds the lease of a replica directory. Processes sharing it must
// see one file system where hard links are atomic (a local disk; NFS too).
type Leaser struct {
	// Path is the replica's root directory.
	Path string
	// TTL is how long a lease lasts unless renewed. Default 30s.
	TTL time.Duration
	// Owner names this process in the record. Default "hostname:pid".
	Owner string
}

// NewLeaser returns a leaser for the replica directory path.
func NewLeaser(path string) *Leaser {
	return &Leaser{Path: path, TTL: DefaultLeaseTTL, Owner: litestream.DefaultLeaseOwner()}
}

// NewLeaser returns a leaser for the client's directory.
func (c *ReplicaClient) NewLeaser() *Leaser { return NewLeaser(c.path) }

// Type returns "file".
func (l *Leaser) Type() string { return LeaserType }

// AcquireLease takes the lease if it is free or expired.
func (l *Leaser) AcquireLease(ctx context.Context) (*litestream.Lease, error) {
	return litestream.AcquireObjectLease(ctx, l.object(), l.Owner, l.ttl())
}

// RenewLease extends a held lease.
func (l *Leaser) RenewLease(ctx context.Context, lease *litestream.Lease) (*litestream.Lease, error) {
	return litestream.RenewObjectLease(ctx, l.object(), lease, l.ttl())
}

// ReleaseLease gives the lease up.
func (l *Leaser) ReleaseLease(ctx context.Context, lease *litestream.Lease) error {
	return litestream.ReleaseObjectLease(ctx, l.object(), lease)
}

func (l *Leaser) ttl() time.Duration {
	if l.TTL <= 0 {
		return DefaultLeaseTTL
	}
	return l.TTL
}

func (l *Leaser) object() *leaseDir {
	return &leaseDir{dir: filepath.Join(l.Path, LeaseDir)}
}

// leaseDir holds the lease record as immutable versions <n>.json; the
// highest is current. Replacing version n means creating n+1 exclusively
// (a hard link, which fails if the name exists), so of two racing writers
// exactly one succeeds, and a writer paused mid-change holds no lock that
// would stall the others.
type leaseDir struct{ dir string }

func versionName(n uint64) string { return fmt.Sprintf("%016x.json", n) }

// current returns the highest version, 0 if there is none.
func (d *leaseDir) current() (uint64, error) {
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var n uint64
	for _, e := range entries {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		if v, err := strconv.ParseUint(hex, 16, 64); ok && len(hex) == 16 && err == nil && v > n {
			n = v
		}
	}
	return n, nil
}

func (d *leaseDir) ReadLease(ctx context.Context) ([]byte, string, error) {
	for attempt := 0; ; attempt++ {
		n, err := d.current()
		if err != nil {
			return nil, "", err
		} else if n == 0 {
			return nil, "", os.ErrNotExist
		}
		data, err := os.ReadFile(filepath.Join(d.dir, versionName(n)))
		if errors.Is(err, os.ErrNotExist) && attempt < 10 {
			continue // removed as superseded meanwhile: list again
		} else if err != nil {
			return nil, "", err
		}
		return data, versionTag(n, data), nil
	}
}

// versionTag names version n of the record by its number and its bytes.
// The number alone is not enough: after lock/ is removed by hand numbering
// starts again, and a holder's stale number would match another's version.
func versionTag(n uint64, data []byte) string {
	return fmt.Sprintf("%d:%08x", n, crc32.ChecksumIEEE(data))
}

// parseVersionTag returns the number in tag and whether version n still
// holds the bytes tag was made of.
func (d *leaseDir) parseVersionTag(tag string) (uint64, bool) {
	num, _, _ := strings.Cut(tag, ":")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, false
	}
	data, err := os.ReadFile(filepath.Join(d.dir, versionName(n)))
	return n, err == nil && versionTag(n, data) == tag
}

func (d *leaseDir) CreateLease(ctx context.Context, data []byte) (string, error) {
	if n, err := d.current(); err != nil {
		return "", err
	} else if n != 0 {
		return "", litestream.ErrLeaseConflict
	}
	return d.write(1, data)
}

func (d *leaseDir) ReplaceLease(ctx context.Context, data []byte, etag string) (string, error) {
	n, ok := d.parseVersionTag(etag)
	if !ok {
		return "", be.Errorf("lease version %q is no longer the record's: %w", etag, litestream.ErrLeaseConflict)
	}
	return d.write(n+1, data)
}

// write creates version n on top of version n-1; it fails with
// ErrLeaseConflict unless n-1 is the highest version before and n after.
// Exclusive creation alone is not enough: superseded versions are removed,
// so a holder paused while others wrote several versions would find its
// n free again and take the lease back from the current holder.
func (d *leaseDir) write(n uint64, data []byte) (string, error) {
	if err := internal.MkdirAll(d.dir, internal.DefaultDirPerm); err != nil {
		return "", be.Errorf("create lease directory: %w", err)
	}
	if cur, err := d.current(); err != nil {
		return "", be.Errorf("read lease versions: %w", err)
	} else if cur != n-1 {
		return "", litestream.ErrLeaseConflict
	}
	path := filepath.Join(d.dir, versionName(n))
	_, err := internal.WriteFileAtomicNoReplace(path, internal.DefaultFilePerm, bytes.NewReader(data))
	if errors.Is(err, os.ErrExist) {
		return "", litestream.ErrLeaseConflict
	} else if err != nil {
		return "", be.Errorf("write lease version %d: %w", n, err)
	}
	// Others may have written past n-1 between the check and the write.
	if cur, err := d.current(); err != nil {
		return "", be.Errorf("read lease versions: %w", err)
	} else if cur != n {
		_ = os.Remove(path)
		return "", litestream.ErrLeaseConflict
	}
	if n > 2 { // keep the previous version for people reading the directory
		_ = os.Remove(filepath.Join(d.dir, versionName(n-2)))
	}
	return versionTag(n, data), nil
}
