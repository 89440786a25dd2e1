// v3.go is the conformance suite for litestream.ReplicaClientV3: a backup
// built by internal/v3gen is uploaded through the service's own API, then
// listed, opened and restored through the client, latest and at a point
// in time inside a generation, plain and age-encrypted.

package clienttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/v3gen"
)

// PutRawFunc stores data at key (slash-separated, already joined with the
// client's path) through the service's own API.
type PutRawFunc func(t testing.TB, key string, data []byte)

// RunV3 runs the v0.3.x suite. newClient must return a client that also
// implements litestream.ReplicaClientV3; put writes objects it can see.
func RunV3(t *testing.T, newClient NewClientFunc, put PutRawFunc) {
	var n int
	var mu sync.Mutex
	fresh := func(t testing.TB) (litestream.ReplicaClientV3, *litestream.Replica, string) {
		mu.Lock()
		n++
		p := fmt.Sprintf("v3-%d-%d", time.Now().UnixNano(), n)
		mu.Unlock()
		c := newClient(t, p)
		v3, ok := c.(litestream.ReplicaClientV3)
		if !ok {
			t.Fatalf("%T does not implement litestream.ReplicaClientV3", c)
		}
		return v3, litestream.NewReplicaWithClient(nil, c), p
	}
	upload := func(t testing.TB, root string, files []v3gen.File) {
		for _, f := range files {
			put(t, v3gen.Key(root, f.Path), f.Data)
		}
	}
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		c, r, _ := fresh(t)
		if gens, err := c.GenerationsV3(ctx); err != nil || len(gens) != 0 {
			t.Fatalf("GenerationsV3 = %v, %v; want none", gens, err)
		}
		if _, _, err := r.TimeBoundsV3(ctx, c); err != nil {
			t.Fatalf("TimeBoundsV3: %v", err)
		}
	})

	t.Run("ListAndOpen", func(t *testing.T) {
		g, seed := v3gen.NewSeeded(t, 4096)
		g.Build(2)
		c, _, root := fresh(t)
		upload(t, root, g.Files)

		var wantGens []string
		for _, f := range g.Files {
			if !slices.Contains(wantGens, f.Generation) {
				wantGens = append(wantGens, f.Generation)
			}
		}
		slices.Sort(wantGens)
		gens, err := c.GenerationsV3(ctx)
		if err != nil || !slices.Equal(gens, wantGens) {
			t.Fatalf("GenerationsV3 = %v, %v; want %v", gens, err, wantGens)
		}
		for _, gen := range gens {
			snapshots, err := c.SnapshotsV3(ctx, gen)
			if err != nil {
				t.Fatal(err)
			}
			segments, err := c.WALSegmentsV3(ctx, gen)
			if err != nil {
				t.Fatal(err)
			}
			var gotSnap, gotSeg, wantSnap, wantSeg []string
			for _, s := range snapshots {
				gotSnap = append(gotSnap, fmt.Sprintf("%s/%d/%d", s.Generation, s.Index, s.Size))
				if s.CreatedAt.IsZero() {
					t.Fatalf("snapshot %v has no CreatedAt", s.Pos())
				}
			}
			for _, s := range segments {
				gotSeg = append(gotSeg, fmt.Sprintf("%s/%d/%d/%d", s.Generation, s.Index, s.Offset, s.Size))
				if s.CreatedAt.IsZero() {
					t.Fatalf("segment %v has no CreatedAt", s.Pos())
				}
			}
			for _, f := range g.Files {
				if f.Generation != gen {
					continue
				} else if f.Snapshot {
					wantSnap = append(wantSnap, fmt.Sprintf("%s/%d/%d", f.Generation, f.Index, len(f.Data)))
				} else {
					wantSeg = append(wantSeg, fmt.Sprintf("%s/%d/%d/%d", f.Generation, f.Index, f.Offset, len(f.Data)))
				}
			}
			if !slices.Equal(gotSnap, wantSnap) {
				t.Fatalf("seed %d: SnapshotsV3(%s) = %v, want %v (sorted by index)", seed, gen, gotSnap, wantSnap)
			} else if !slices.Equal(gotSeg, wantSeg) {
				t.Fatalf("seed %d: WALSegmentsV3(%s) = %v, want %v (sorted by index, offset)", seed, gen, gotSeg, wantSeg)
			}
		}
		for _, f := range g.Files {
			var rc io.ReadCloser
			if f.Snapshot {
				rc, err = c.OpenSnapshotV3(ctx, f.Generation, f.Index)
			} else {
				rc, err = c.OpenWALSegmentV3(ctx, f.Generation, f.Index, f.Offset)
			}
			if err != nil {
				t.Fatalf("open %s: %v", f.Path, err)
			}
			b, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || !bytes.Equal(b, f.Plain) {
				t.Fatalf("open %s: read %d bytes, %v; want its %d decompressed bytes", f.Path, len(b), err, len(f.Plain))
			}
		}
		if _, err := c.OpenSnapshotV3(ctx, gens[0], 999); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open missing snapshot: %v, want os.ErrNotExist", err)
		}
		if _, err := c.OpenWALSegmentV3(ctx, gens[0], 999, 0); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open missing wal segment: %v, want os.ErrNotExist", err)
		}
	})

	t.Run("RestorePointInTime", func(t *testing.T) {
		g, seed := v3gen.NewSeeded(t, 1024)
		g.Build(1)
		g.NewGeneration()
		g.Write(3)
		g.Write(4)
		mid := len(g.Files) - 1 // inside the second generation
		g.Checkpoint()
		g.Write(5)
		g.Snapshot()
		g.Write(2)
		c, r, root := fresh(t)

		// The service stamps the time, at worst in whole seconds: each part
		// is uploaded once its clock has passed the previous part's, so that
		// the second generation is newer and the target splits it.
		gen2 := slices.IndexFunc(g.Files, func(f v3gen.File) bool { return f.Generation != g.Files[0].Generation })
		upload(t, root, g.Files[:gen2])
		waitNextSecond(time.Now())
		upload(t, root, g.Files[gen2:mid])
		waitNextSecond(time.Now())
		upload(t, root, g.Files[mid:])

		segs, err := c.WALSegmentsV3(ctx, g.Files[mid-1].Generation)
		if err != nil {
			t.Fatal(err)
		}
		var target time.Time
		for _, s := range segs {
			if s.Pos() == (litestream.PosV3{Generation: g.Files[mid-1].Generation, Index: g.Files[mid-1].Index, Offset: g.Files[mid-1].Offset}) {
				target = s.CreatedAt
			}
		}
		if target.IsZero() {
			t.Fatalf("segment %s not listed", g.Files[mid-1].Path)
		}

		for _, tt := range []struct {
			name string
			ts   time.Time
			want string
		}{{"Latest", time.Time{}, g.Files[len(g.Files)-1].State}, {"Mid", target, g.Files[mid-1].State}} {
			out := filepath.Join(t.TempDir(), "db")
			if err := r.Restore(ctx, litestream.RestoreOptions{OutputPath: out, Timestamp: tt.ts}); err != nil {
				t.Fatalf("seed %d: %s: restore: %v", seed, tt.name, err)
			} else if got := v3gen.MustState(t, out); got != tt.want {
				t.Fatalf("seed %d: %s: state %s, want %s", seed, tt.name, got, tt.want)
			}
		}
	})

	t.Run("RestoreAge", func(t *testing.T) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		g := v3gen.New(t, 11, 4096, id.Recipient())
		g.Build(1)
		_, r, root := fresh(t)
		upload(t, root, g.Files)
		out := filepath.Join(t.TempDir(), "db")
		if err := r.Restore(ctx, litestream.RestoreOptions{OutputPath: out}); err == nil {
			t.Fatal("restore of an encrypted backup without identity succeeded")
		}
		if err := r.Restore(ctx, litestream.RestoreOptions{OutputPath: out, AgeIdentities: []age.Identity{id}}); err != nil {
			t.Fatalf("restore: %v", err)
		} else if got, want := v3gen.MustState(t, out), g.Files[len(g.Files)-1].State; got != want {
			t.Fatalf("state %s, want %s", got, want)
		}
	})
}

// waitNextSecond returns once the wall clock is in a later second than t,
// so that services keeping whole seconds stamp later files later. It waits
// a further 50ms: file systems stamp files from a coarse clock that can lag
// the wall clock by a tick.
func waitNextSecond(t time.Time) {
	next := t.Truncate(time.Second).Add(time.Second + 50*time.Millisecond)
	for time.Now().Before(next) {
		time.Sleep(10 * time.Millisecond)
	}
}
