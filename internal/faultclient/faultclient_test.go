// Tests of the fault-injecting client.
package faultclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

// MustLTX encodes an LTX file of n random-ish pages at TXID txid.
func MustLTX(t testing.TB, txid ltx.TXID, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	hdr := ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096, Commit: uint32(n), MinTXID: txid, MaxTXID: txid, Timestamp: time.Now().UnixMilli()}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for pgno := uint32(1); pgno <= uint32(n); pgno++ {
		for i := range page {
			page[i] = byte(int(pgno)*7 + i*i)
		}
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, page); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newClient(t testing.TB, cfg faultclient.Config) (*faultclient.Client, *file.ReplicaClient) {
	t.Helper()
	inner := file.NewReplicaClient(t.TempDir())
	return faultclient.New(inner, cfg), inner
}

// MustRead returns the content of a file on the unwrapped client.
func MustRead(t testing.TB, c *file.ReplicaClient, level int, txid ltx.TXID) []byte {
	t.Helper()
	rc, err := c.OpenLTXFile(context.Background(), level, txid, txid, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClient_PassThrough(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]faultclient.Config{
		"NoRates": {},
		"Slow":    {SlowRate: 1, SlowDelay: 5 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := newClient(t, cfg)
			want := MustLTX(t, 1, 3)
			if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(want)); err != nil {
				t.Fatal(err)
			}
			rc, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, err %v; want %d bytes", len(got), err, len(want))
			}
			itr, err := c.LTXFiles(ctx, 0, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if infos, err := ltx.SliceFileIterator(itr); err != nil || len(infos) != 1 {
				t.Fatalf("listing: %v, %v", infos, err)
			}
			if err := c.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 0, MinTXID: 1, MaxTXID: 1}}); err != nil {
				t.Fatal(err)
			}
			if n := c.Counts()[faultclient.KindSlow]; name == "Slow" && n != 4 {
				t.Fatalf("slow faults = %d, want 4", n)
			}
		})
	}
}

func TestClient_Error(t *testing.T) {
	ctx := context.Background()
	c, inner := newClient(t, faultclient.Config{ErrorRate: 1})
	data := MustLTX(t, 1, 2)
	if _, err := inner.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}

	calls := map[string]func() error{
		"Init": func() error { return c.Init(ctx) },
		"LTXFiles": func() error {
			_, err := c.LTXFiles(ctx, 0, 0, false)
			return err
		},
		"OpenLTXFile": func() error {
			_, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
			return err
		},
		"WriteLTXFile": func() error {
			_, err := c.WriteLTXFile(ctx, 0, 2, 2, bytes.NewReader(MustLTX(t, 2, 1)))
			return err
		},
		"DeleteLTXFiles": func() error {
			return c.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 0, MinTXID: 1, MaxTXID: 1}})
		},
		"DeleteAll": func() error { return c.DeleteAll(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, faultclient.ErrInjected) {
			t.Errorf("%s: err = %v, want ErrInjected", name, err)
		}
	}
	// The failed calls did nothing.
	if got := MustRead(t, inner, 0, 1); !bytes.Equal(got, data) {
		t.Fatal("file 1 changed")
	}
	if _, err := inner.OpenLTXFile(ctx, 0, 2, 2, 0, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed write stored a file: %v", err)
	}
	if n := c.Counts()[faultclient.KindError]; n != len(calls) {
		t.Fatalf("error count %d, want %d", n, len(calls))
	}

	c.SetEnabled(false)
	if _, err := c.LTXFiles(ctx, 0, 0, false); err != nil {
		t.Fatalf("disabled: %v", err)
	}
}

func TestClient_Timeout(t *testing.T) {
	t.Run("Deadline", func(t *testing.T) {
		c, _ := newClient(t, faultclient.Config{TimeoutRate: 1, Timeout: 10 * time.Millisecond})
		if _, err := c.LTXFiles(context.Background(), 0, 0, false); !errors.Is(err, faultclient.ErrInjected) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ContextDone", func(t *testing.T) {
		// The deadline is far off: only the canceled context can end the call.
		c, _ := newClient(t, faultclient.Config{TimeoutRate: 1, Timeout: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(MustLTX(t, 1, 1)))
		if !errors.Is(err, faultclient.ErrInjected) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want ErrInjected and context.Canceled", err)
		}
	})
}

// Short reads return a strict prefix of the file, ending with io.EOF or an
// injected error; both kinds occur across seeds.
func TestClient_ShortRead(t *testing.T) {
	ctx := context.Background()
	seen := map[bool]int{}
	for seed := int64(0); seed < 20; seed++ {
		c, inner := newClient(t, faultclient.Config{Seed: seed, ShortReadRate: 1})
		data := MustLTX(t, 1, 8)
		if _, err := inner.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		rc, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
			t.Fatalf("seed %d: read %d of %d bytes, want a strict prefix", seed, len(got), len(data))
		}
		if err != nil && !errors.Is(err, faultclient.ErrInjected) {
			t.Fatalf("seed %d: err = %v", seed, err)
		}
		seen[err == nil]++
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Fatalf("silent/erroring short reads: %d/%d, want both", seen[true], seen[false])
	}
}

// A half-write consumes half of a file's remaining bytes and stores nothing.
func TestClient_HalfWrite(t *testing.T) {
	ctx := context.Background()
	c, inner := newClient(t, faultclient.Config{HalfWriteRate: 1})
	data := MustLTX(t, 1, 8)
	path := filepath.Join(t.TempDir(), "src.ltx")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()

	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, f); !errors.Is(err, faultclient.ErrInjected) {
		t.Fatalf("err = %v", err)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != int64(len(data)/2) {
		t.Fatalf("consumed %d of %d bytes, want half", off, len(data))
	}
	if _, err := inner.OpenLTXFile(ctx, 0, 1, 1, 0, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-write stored a file: %v", err)
	}
}

// A lost ack stores the file and still reports failure.
func TestClient_LostAck(t *testing.T) {
	ctx := context.Background()
	c, inner := newClient(t, faultclient.Config{LostAckRate: 1})
	data := MustLTX(t, 1, 3)
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(data)); !errors.Is(err, faultclient.ErrInjected) {
		t.Fatalf("err = %v", err)
	}
	if got := MustRead(t, inner, 0, 1); !bytes.Equal(got, data) {
		t.Fatal("stored file differs")
	}
}

// The same seed injects the same faults in the same calls.
func TestClient_Seed(t *testing.T) {
	run := func(seed int64) []bool {
		c, _ := newClient(t, faultclient.Config{Seed: seed, ErrorRate: 0.5})
		var a []bool
		for i := 0; i < 64; i++ {
			_, err := c.LTXFiles(context.Background(), 0, 0, false)
			a = append(a, err != nil)
		}
		return a
	}
	a, b := run(7), run(7)
	var failed int
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d differs between runs with the same seed", i)
		}
		if a[i] {
			failed++
		}
	}
	if failed == 0 || failed == len(a) {
		t.Fatalf("%d of %d calls failed at rate 0.5", failed, len(a))
	}
}
