// Compile-only check of the leasing API: upstream's names and signatures
// (leaser.go) and ours around them; s3/leaser_test.go checks s3.Leaser's.
package litestream_test

import (
	"context"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

func TestAPI_Lease(t *testing.T) {
	var (
		_ error                     = litestream.ErrLeaseNotHeld
		_ error                     = &litestream.LeaseExistsError{Owner: "", ExpiresAt: time.Time{}}
		_ func() bool               = (&litestream.Lease{}).IsExpired
		_ func() time.Duration      = (&litestream.Lease{}).TTL
		_ litestream.Leaser         = (*file.Leaser)(nil)
		_ litestream.Leaser         = litestream.UnsupportedLeaser{Backend: "sftp"}
		_ func(string) *file.Leaser = file.NewLeaser
		_ func() *file.Leaser       = file.NewReplicaClient("").NewLeaser
		_ error                     = litestream.ErrLTXFileExists
		_ error                     = litestream.ErrLeaseUnsupported
		_ error                     = litestream.ErrLeaseConflict
		_ error                     = &litestream.LeaseLostError{Owner: "", Err: nil}
		_ func() string             = litestream.DefaultLeaseOwner
		_ time.Duration             = litestream.DefaultLeaseRetryInterval

		_ func(context.Context) context.Context                                                                      = litestream.WithCreateOnly
		_ func(context.Context) bool                                                                                 = litestream.IsCreateOnly
		_ func(context.Context, litestream.LeaseObject, string, time.Duration) (*litestream.Lease, error)            = litestream.AcquireObjectLease
		_ func(context.Context, litestream.LeaseObject, *litestream.Lease, time.Duration) (*litestream.Lease, error) = litestream.RenewObjectLease
		_ func(context.Context, litestream.LeaseObject, *litestream.Lease) error                                     = litestream.ReleaseObjectLease
	)
	var l litestream.Leaser = (*file.Leaser)(nil)
	var _ func() string = l.Type
	var _ func(context.Context) (*litestream.Lease, error) = l.AcquireLease
	var _ func(context.Context, *litestream.Lease) (*litestream.Lease, error) = l.RenewLease
	var _ func(context.Context, *litestream.Lease) error = l.ReleaseLease
	_ = litestream.Lease{Generation: 1, ExpiresAt: time.Time{}, Owner: "", ETag: ""}

	r := litestream.NewReplica(nil)
	r.Leaser, r.LeaseWait, r.LeaseRenewInterval = file.NewLeaser(""), true, time.Second
	var st litestream.SyncStatus
	_ = st.LeaseLost
}
