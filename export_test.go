package litestream

import (
	"context"
	"os"

	"github.com/superfly/ltx"
)

// ApplyNewFiles runs one round of follow mode on an open output database,
// so that fuzzing can drive it without the polling loop.
func (r *Replica) ApplyNewFiles(ctx context.Context, f *os.File, cur ltx.TXID) (ltx.TXID, error) {
	return r.applyNewFiles(ctx, f, cur)
}
