// Upstream's s3 leaser API; the leasing suite runs in TestReplicaClient_Suites.
package s3_test

import (
	"log/slog"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/s3"
)

// Compile-only: upstream's s3 leaser names and signatures.
func TestAPI_Leaser(t *testing.T) {
	var (
		_ litestream.Leaser  = (*s3.Leaser)(nil)
		_ func() *s3.Leaser  = s3.NewLeaser
		_ func(*slog.Logger) = s3.NewLeaser().SetLogger
		_ func(s3.S3API)     = s3.NewLeaser().SetClient
		_ func() s3.S3API    = s3.NewLeaser().Client
		_ func() *s3.Leaser  = s3.NewReplicaClient().NewLeaser
	)
	l := s3.NewLeaser()
	l.Bucket, l.Path, l.Endpoint, l.TTL, l.Owner = "", "", "", s3.DefaultLeaseTTL, ""
	_, _ = s3.DefaultLeasePath, s3.LeaserType
}
