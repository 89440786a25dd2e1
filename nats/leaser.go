// Leaser for the nats backend: the lease record is one key of a JetStream
// key-value bucket ("<bucket>-lease"), created with KV Create and replaced
// with a revision-checked KV Update, so the server decides who holds it.

package nats

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/objlease"
)

// Lease defaults.
const (
	DefaultLeaseTTL  = 30 * time.Second
	DefaultLeasePath = "lock.json"
	LeaserType       = "nats"
)

// Leaser holds the lease of a NATS replica path.
// AcquireLease, RenewLease and ReleaseLease come from the embedded
// objlease.Methods, on the record read and written below.
type Leaser struct {
	client *ReplicaClient
	leaseMethods

	mu sync.Mutex // guards kv
	kv jetstream.KeyValue

	TTL   time.Duration // default 30s
	Owner string        // default "hostname:pid"
}

// NewLeaser returns a leaser for the client's bucket and path that shares
// its connection. The key-value bucket "<bucket>-lease" is created on first
// use if missing.
func (c *ReplicaClient) NewLeaser() *Leaser {
	l := &Leaser{client: c}
	l.leaseMethods = objlease.Init(l, &l.TTL, &l.Owner)
	return l
}

// Type returns "nats".
func (l *Leaser) Type() string { return LeaserType }

// leaseMethods is embedded under an unexported name.
type leaseMethods = objlease.Methods

// key names the replica's record: key characters are restricted, so the
// path is hex-encoded.
func (l *Leaser) key() string {
	if l.client.Path == "" {
		return "lock"
	}
	return "lock." + hex.EncodeToString([]byte(l.client.Path))
}

func (l *Leaser) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kv != nil {
		return l.kv, nil
	}
	if _, err := l.client.objectStore(ctx); err != nil { // connects
		return nil, err
	}
	l.client.mu.Lock()
	nc := l.client.nc
	l.client.mu.Unlock()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, be.Errorf("jetstream: %w", err)
	}
	name := l.client.BucketName + "-lease"
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, be.Errorf("open lease bucket %q: %w", name, err)
	}
	l.kv = kv
	return kv, nil
}

// ReadLease implements litestream.LeaseObject; the version is the key's
// revision.
func (l *Leaser) ReadLease(ctx context.Context) ([]byte, string, error) {
	kv, err := l.bucket(ctx)
	if err != nil {
		return nil, "", err
	}
	entry, err := kv.Get(ctx, l.key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, "", os.ErrNotExist
	} else if err != nil {
		return nil, "", be.Errorf("read lease %s: %w", l.key(), err)
	}
	return entry.Value(), strconv.FormatUint(entry.Revision(), 10), nil
}

// CreateLease implements litestream.LeaseObject with KV Create.
func (l *Leaser) CreateLease(ctx context.Context, data []byte) (string, error) {
	kv, err := l.bucket(ctx)
	if err != nil {
		return "", err
	}
	rev, err := kv.Create(ctx, l.key(), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return "", litestream.ErrLeaseConflict
	} else if err != nil {
		return "", be.Errorf("create lease %s: %w", l.key(), err)
	}
	return strconv.FormatUint(rev, 10), nil
}

// ReplaceLease implements litestream.LeaseObject with a revision-checked
// KV Update.
func (l *Leaser) ReplaceLease(ctx context.Context, data []byte, etag string) (string, error) {
	kv, err := l.bucket(ctx)
	if err != nil {
		return "", err
	}
	last, err := strconv.ParseUint(etag, 10, 64)
	if err != nil {
		return "", be.Errorf("lease revision %q: %w", etag, litestream.ErrLeaseConflict)
	}
	rev, err := kv.Update(ctx, l.key(), data, last)
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
		return "", litestream.ErrLeaseConflict
	} else if err != nil {
		return "", be.Errorf("update lease %s: %w", l.key(), err)
	}
	return strconv.FormatUint(rev, 10), nil
}
