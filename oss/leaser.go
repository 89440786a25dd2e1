// The oss backend cannot hold a lease: it has no conditional write that
// would let the server refuse a second writer.

package oss

import "github.com/benbjohnson/litestream"

// NewLeaser returns a leaser whose every call fails with an error matching
// litestream.ErrLeaseUnsupported, so that a Replica asked to lease a oss
// replica refuses to start instead of running unfenced.
func (c *ReplicaClient) NewLeaser() litestream.Leaser {
	return litestream.UnsupportedLeaser{Backend: "oss"}
}
