// The sftp backend cannot hold a lease: it has no conditional write that
// would let the server refuse a second writer.

package sftp

import "github.com/benbjohnson/litestream"

// NewLeaser returns a leaser whose every call fails with an error matching
// litestream.ErrLeaseUnsupported, so that a Replica asked to lease a sftp
// replica refuses to start instead of running unfenced.
func (c *ReplicaClient) NewLeaser() litestream.Leaser {
	return litestream.UnsupportedLeaser{Backend: "sftp"}
}
