// Leaser for the gs backend: the lease record is the object
// <path>/lock.json, created with a DoesNotExist precondition and replaced
// with GenerationMatch, so GCS itself decides who holds it.

package gs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/objlease"
)

// Lease defaults.
const (
	DefaultLeaseTTL  = 30 * time.Second
	DefaultLeasePath = "lock.json"
	LeaserType       = "gs"
)

// Leaser holds the lease of a GCS replica path.
// AcquireLease, RenewLease and ReleaseLease come from the embedded
// objlease.Methods, on the record read and written below.
type Leaser struct {
	client *ReplicaClient
	leaseMethods

	TTL   time.Duration // default 30s
	Owner string        // default "hostname:pid"
}

// NewLeaser returns a leaser for the client's bucket and path that shares
// its connection.
func (c *ReplicaClient) NewLeaser() *Leaser {
	l := &Leaser{client: c}
	l.leaseMethods = objlease.Init(l, &l.TTL, &l.Owner)
	return l
}

// Type returns "gs".
func (l *Leaser) Type() string { return LeaserType }

// leaseMethods is embedded under an unexported name.
type leaseMethods = objlease.Methods

func (l *Leaser) object(ctx context.Context) (*storage.ObjectHandle, error) {
	bkt, err := l.client.bucket(ctx)
	if err != nil {
		return nil, err
	}
	return bkt.Object(objlease.Key(l.client.Path, DefaultLeasePath)), nil
}

// ReadLease implements litestream.LeaseObject; the version is the object's
// generation.
func (l *Leaser) ReadLease(ctx context.Context) ([]byte, string, error) {
	obj, err := l.object(ctx)
	if err != nil {
		return nil, "", err
	}
	r, err := obj.NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, "", os.ErrNotExist
	} else if err != nil {
		return nil, "", be.Errorf("read %s: %w", obj.ObjectName(), err)
	}
	defer func() { _ = r.Close() }()
	data, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, "", be.Errorf("read %s: %w", obj.ObjectName(), err)
	}
	return data, strconv.FormatInt(r.Attrs.Generation, 10), nil
}

// CreateLease implements litestream.LeaseObject with DoesNotExist.
func (l *Leaser) CreateLease(ctx context.Context, data []byte) (string, error) {
	return l.write(ctx, data, storage.Conditions{DoesNotExist: true})
}

// ReplaceLease implements litestream.LeaseObject with GenerationMatch.
func (l *Leaser) ReplaceLease(ctx context.Context, data []byte, etag string) (string, error) {
	gen, err := strconv.ParseInt(etag, 10, 64)
	if err != nil {
		return "", be.Errorf("lease generation %q: %w", etag, litestream.ErrLeaseConflict)
	}
	return l.write(ctx, data, storage.Conditions{GenerationMatch: gen})
}

func (l *Leaser) write(ctx context.Context, data []byte, cond storage.Conditions) (string, error) {
	obj, err := l.object(ctx)
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := obj.If(cond).NewWriter(wctx)
	w.ContentType = "application/json"
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		cancel()
		_ = w.Close()
		return "", be.Errorf("write %s: %w", obj.ObjectName(), err)
	}
	if err := w.Close(); isPreconditionFailed(err) || errors.Is(err, storage.ErrObjectNotExist) {
		return "", litestream.ErrLeaseConflict
	} else if err != nil {
		return "", be.Errorf("write %s: %w", obj.ObjectName(), err)
	}
	return strconv.FormatInt(w.Attrs().Generation, 10), nil
}

// isPreconditionFailed reports a write refused by its precondition (412).
func isPreconditionFailed(err error) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == http.StatusPreconditionFailed
}
