// Tests that two spellings of one gs replica path share its lease.
package gs_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/gs"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

// Two processes configured with the same replica path, one with a trailing
// slash: their LTX files are the same objects (the level prefix is joined
// with path.Join), but their lease records are two objects ("db/lock.json"
// and "db//lock.json") before the fix, so both held "the" lease at once.
func TestLeaser_PathSpellingsShareFilesNotLease(t *testing.T) {
	ctx := context.Background()
	fx := mustFakeGCS(t)
	a := fx.NewClient(t, "db").(*gs.ReplicaClient)
	b := fx.NewClient(t, "db/").(*gs.ReplicaClient)

	data := clienttest.MustLTX(t, 4096, 1, 1, 1, time.Now())
	if _, err := a.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if rc, err := b.OpenLTXFile(ctx, 0, 1, 1, 0, 0); err != nil {
		t.Fatalf("the second spelling does not see the first one's files: %v", err)
	} else {
		_ = rc.Close()
	}

	la, lb := a.NewLeaser(), b.NewLeaser()
	la.Owner, lb.Owner = "a", "b"
	if _, err := la.AcquireLease(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lb.AcquireLease(ctx); err == nil {
		t.Fatalf("both spellings of one replica path hold its lease at once: objects %v", fx.Names(t))
	}
}
