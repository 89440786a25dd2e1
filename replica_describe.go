// Descriptions of a replica for error messages: which backend and where,
// and which TXIDs it holds, so that "transaction not available" says what was
// looked at.

package litestream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/superfly/ltx"
)

// replicaName returns the client's type and, where the client knows it, its
// location, e.g. `file replica "/mnt/backup"` or `s3 replica "s3://b/db"`.
// Clients give their location with a String method (or Path, for file).
func replicaName(c ReplicaClient) string {
	switch v := c.(type) {
	case fmt.Stringer:
		return fmt.Sprintf("%s replica %q", c.Type(), v.String())
	case interface{ Path() string }:
		return fmt.Sprintf("%s replica %q", c.Type(), v.Path())
	}
	return c.Type() + " replica"
}

// replicaExtent is the TXID range a replica holds across all levels, and its
// oldest file's creation time.
type replicaExtent struct {
	files            int
	minTXID, maxTXID ltx.TXID
	oldest           time.Time
}

// readReplicaExtent lists every level. With useMetadata the creation times are
// the LTX header timestamps (a read per file on some backends).
func readReplicaExtent(ctx context.Context, c ReplicaClient, useMetadata bool) (replicaExtent, error) {
	var e replicaExtent
	for level := 0; level <= SnapshotLevel; level++ {
		_, err := FindLTXFiles(ctx, c, level, useMetadata, func(info *ltx.FileInfo) (bool, error) {
			if e.files == 0 || info.MinTXID < e.minTXID {
				e.minTXID = info.MinTXID
			}
			if info.MaxTXID > e.maxTXID {
				e.maxTXID = info.MaxTXID
			}
			if e.files == 0 || info.CreatedAt.Before(e.oldest) {
				e.oldest = info.CreatedAt
			}
			e.files++
			return false, nil
		})
		if err != nil {
			return e, fmt.Errorf("list L%d: %w", level, err)
		}
	}
	return e, nil
}

// txNotAvailableError explains why the replica cannot produce what opt asks
// for. It wraps ErrTxNotAvailable.
func txNotAvailableError(ctx context.Context, c ReplicaClient, opt RestoreOptions) error {
	name := replicaName(c)
	e, err := readReplicaExtent(ctx, c, !opt.Timestamp.IsZero())
	if err != nil {
		return fmt.Errorf("%s: %w (and listing it failed: %v)", name, ErrTxNotAvailable, err)
	}
	if e.files == 0 {
		if p, ok := c.(interface{ Path() string }); ok && c.Type() == "file" {
			if _, err := os.Stat(p.Path()); errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s: directory does not exist; check the replica path: %w", name, ErrTxNotAvailable)
			}
		}
		return fmt.Errorf("%s: no LTX files at any level; check the replica path or URL: %w", name, ErrTxNotAvailable)
	}
	held := fmt.Sprintf("replica holds TXIDs %s-%s", e.minTXID, e.maxTXID)
	switch {
	case opt.TXID != 0:
		return fmt.Errorf("%s: TXID %s requested, %s: %w", name, opt.TXID, held, ErrTxNotAvailable)
	case !opt.Timestamp.IsZero():
		return fmt.Errorf("%s: timestamp %s requested, %s, oldest file created %s: %w", name,
			opt.Timestamp.UTC().Format(time.RFC3339Nano), held, e.oldest.UTC().Format(time.RFC3339Nano), ErrTxNotAvailable)
	}
	return fmt.Errorf("%s: %s: %w", name, held, ErrTxNotAvailable)
}
