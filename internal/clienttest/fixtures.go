// Fixtures the backends' own tests share: a backend's test server as one
// Fixture (clients rooted anywhere in a store of the test's own, plus raw
// access through the service's own API), and the test bodies every backend
// runs against its Fixture: the key layout upstream reads, replica URLs and
// Init's configuration errors.

package clienttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// Fixture is one backend's test server as the shared tests reach it: a
// bucket, container, object store or directory made for the test that
// asked for it. Object names are "/"-separated and relative to the store:
// a client's path joined with the key it writes.
type Fixture struct {
	// NewClient returns a client rooted at path; "" is the store's root.
	NewClient NewClientFunc
	// Layout is how the backend names LTX files under a client's path.
	Layout RawLayout

	// Names lists every object name in the store, sorted, through the
	// service's own API.
	Names func(t testing.TB) []string
	// Get opens the object name through the service's own API.
	Get func(name string) (io.ReadCloser, error)
	// Put stores an object through the service's own API: a v0.3.x
	// backup's, or one that is not the replica's.
	Put PutRawFunc
	// Stamp returns the time the service keeps with the object name (its
	// metadata, header or mtime) as text; nil where it keeps none.
	Stamp func(t testing.TB, name string) string
}

// ListRaw lists the objects under a client's path, keys relative to it.
func (fx Fixture) ListRaw(t testing.TB, path string) []RawObject {
	t.Helper()
	var objects []RawObject
	for _, name := range fx.Names(t) {
		key, ok := name, true
		if path != "" {
			key, ok = strings.CutPrefix(name, path+"/")
		}
		if ok {
			objects = append(objects, RawObject{Key: key, Open: func() (io.ReadCloser, error) { return fx.Get(name) }})
		}
	}
	return objects
}

// Backend is one backend's way into the shared suites.
type Backend struct {
	// Start starts the backend's server for one test and returns the
	// fixture of a store of that test's own.
	Start func(t testing.TB) Fixture
	// Conformance adjusts the conformance suite; its ListRaw and RawLayout
	// are the fixture's, and RootPath is !NoRoot.
	Conformance Options
	// NoRoot leaves out the conformance suite's root subtests, for a
	// backend whose client at the store's root owns every file below it.
	NoRoot bool
	// KeyLayout adjusts the key-layout test.
	KeyLayout KeyLayoutOptions
	// V3 says the backend's client reads v0.3.x backups
	// (litestream.ReplicaClientV3), which Fixture.Put writes.
	V3 bool
	// Leasing says the backend has conditional writes: its client's
	// NewLeaser (upstream's method) returns a working litestream.Leaser,
	// whose Owner and TTL fields (upstream's too) the leasing suite sets.
	Leasing bool
}

// RunBackend runs, each on a server of its own, the conformance suite
// (Run), the key-layout test (RunKeyLayout) and, where the backend has
// them, the v0.3.x suite (RunV3) and the leasing suite (RunLeaser).
func RunBackend(t *testing.T, b Backend) {
	t.Run("Conformance", func(t *testing.T) {
		fx := b.Start(t)
		opt := b.Conformance
		opt.ListRaw, opt.RawLayout, opt.RootPath = fx.ListRaw, fx.Layout, !b.NoRoot
		Run(t, fx.NewClient, opt)
	})
	t.Run("KeyLayout", func(t *testing.T) { RunKeyLayout(t, b.Start(t), b.KeyLayout) })
	if b.V3 {
		t.Run("V3", func(t *testing.T) {
			fx := b.Start(t)
			RunV3(t, fx.NewClient, fx.Put)
		})
	}
	if b.Leasing {
		t.Run("Leaser", func(t *testing.T) {
			fx := b.Start(t)
			RunLeaser(t, func(t testing.TB, path, owner string, ttl time.Duration) (litestream.ReplicaClient, litestream.Leaser) {
				c := fx.NewClient(t, path)
				l := reflect.ValueOf(c).MethodByName("NewLeaser").Call(nil)[0]
				l.Elem().FieldByName("Owner").SetString(owner)
				l.Elem().FieldByName("TTL").Set(reflect.ValueOf(ttl))
				return c, l.Interface().(litestream.Leaser)
			})
		})
	}
}

// OnDisk is a Fixture whose server stores objects as files under dir, which
// the test reads and writes directly (file, sftp).
func OnDisk(dir string, newClient NewClientFunc) Fixture {
	return Fixture{
		NewClient: newClient,
		Names: func(t testing.TB) []string {
			t.Helper()
			var names []string
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, err := filepath.Rel(dir, p)
				names = append(names, filepath.ToSlash(rel))
				return err
			})
			if err != nil {
				t.Fatalf("list %s: %v", dir, err)
			}
			slices.Sort(names)
			return names
		},
		Get: func(name string) (io.ReadCloser, error) { return os.Open(filepath.Join(dir, filepath.FromSlash(name))) },
		Put: func(t testing.TB, name string, data []byte) {
			t.Helper()
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			} else if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Stamp: func(t testing.TB, name string) string {
			t.Helper()
			fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			return fi.ModTime().UTC().Format(time.RFC3339Nano)
		},
	}
}

var nameN atomic.Int64

// UniqueName returns a bucket, container or directory name no other test
// of this process uses: lower-case letters, digits and dashes.
func UniqueName() string {
	return fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e9, nameN.Add(1))
}

// MustWrite writes b through c as the given LTX file.
func MustWrite(t testing.TB, c litestream.ReplicaClient, level int, minTXID, maxTXID ltx.TXID, b []byte) *ltx.FileInfo {
	t.Helper()
	info, err := c.WriteLTXFile(context.Background(), level, minTXID, maxTXID, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("write L%d %s-%s: %v", level, minTXID, maxTXID, err)
	}
	return info
}

// MustList lists a level of c from seek.
func MustList(t testing.TB, c litestream.ReplicaClient, level int, seek ltx.TXID, useMetadata bool) []*ltx.FileInfo {
	t.Helper()
	itr, err := c.LTXFiles(context.Background(), level, seek, useMetadata)
	if err != nil {
		t.Fatalf("list L%d: %v", level, err)
	}
	a, err := ltx.SliceFileIterator(itr)
	if err != nil {
		t.Fatalf("iterate L%d: %v", level, err)
	}
	return a
}

// MustRead reads size bytes (0: to the end) from offset of an LTX file.
func MustRead(t testing.TB, c litestream.ReplicaClient, level int, minTXID, maxTXID ltx.TXID, offset, size int64) []byte {
	t.Helper()
	rc, err := c.OpenLTXFile(context.Background(), level, minTXID, maxTXID, offset, size)
	if err != nil {
		t.Fatalf("open L%d %s-%s: %v", level, minTXID, maxTXID, err)
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read L%d %s-%s: %v", level, minTXID, maxTXID, err)
	}
	return b
}

// LayoutTime is the header timestamp of the key-layout test's files, and
// LayoutStamp the text upstream stores for it in metadata: RFC 3339 with
// milliseconds, trailing zeros dropped.
var LayoutTime = time.Date(2022, 3, 4, 5, 6, 7, 890e6, time.UTC)

const LayoutStamp = "2022-03-04T05:06:07.89Z"

// layoutFiles are the key-layout test's files: levels 1, 9 and 10 tell a
// decimal level from a hex one and a level from its prefix's.
var layoutFiles = []struct {
	level    int
	min, max ltx.TXID
}{{0, 1, 1}, {1, 2, 0x1f}, {9, 1, 0xabc}, {10, 3, 3}}

// KeyLayoutOptions adjust RunKeyLayout for a backend.
type KeyLayoutOptions struct {
	// WantStamp is what Fixture.Stamp must give every object; default
	// LayoutStamp.
	WantStamp string
	// ListedStamp says the listing without metadata already gives the
	// header timestamp (the service lists its metadata).
	ListedStamp bool
}

// RunKeyLayout writes the same files through a client at "db/replica" and
// one at the store's root, each twice (an overwrite leaves no temporary
// object), then checks the store holds exactly the names upstream reads
// and writes, each stamped with the header timestamp where the service
// keeps one, and that each root lists every level back with it.
func RunKeyLayout(t *testing.T, fx Fixture, opt KeyLayoutOptions) {
	if opt.WantStamp == "" {
		opt.WantStamp = LayoutStamp
	}
	roots := []string{"db/replica", ""}
	var want []string
	for _, root := range roots {
		c := fx.NewClient(t, root)
		for _, f := range layoutFiles {
			b := MustLTX(t, 512, f.min, f.max, 1, LayoutTime)
			MustWrite(t, c, f.level, f.min, f.max, b)
			MustWrite(t, c, f.level, f.min, f.max, b)
			want = append(want, strings.TrimPrefix(root+"/"+fx.Layout.key(f.level, f.min, f.max), "/"))
		}
	}
	slices.Sort(want)
	got := fx.Names(t)
	if !slices.Equal(got, want) {
		t.Fatalf("object names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fx.Stamp != nil {
		for _, name := range got {
			if stamp := fx.Stamp(t, name); stamp != opt.WantStamp {
				t.Errorf("%s: stamped %q, want %q", name, stamp, opt.WantStamp)
			}
		}
	}

	for _, root := range roots {
		c := fx.NewClient(t, root)
		modes := []bool{true}
		if opt.ListedStamp {
			modes = append(modes, false)
		}
		for _, f := range layoutFiles {
			for _, useMetadata := range modes {
				a := MustList(t, c, f.level, 0, useMetadata)
				if len(a) != 1 || a[0].MinTXID != f.min || a[0].MaxTXID != f.max || !a[0].CreatedAt.Equal(LayoutTime) {
					t.Fatalf("root %q: L%d listed %s (useMetadata=%v), want %s-%s created %v",
						root, f.level, describeInfos(a), useMetadata, f.min, f.max, LayoutTime)
				}
			}
		}
	}
}

func describeInfos(a []*ltx.FileInfo) string {
	var b strings.Builder
	for _, info := range a {
		fmt.Fprintf(&b, "[L%d %s-%s %v] ", info.Level, info.MinTXID, info.MaxTXID, info.CreatedAt)
	}
	return b.String()
}

// URLCase is a replica URL and what building a client from it must give:
// with WantErr set, an error containing it; otherwise a client whose
// compared fields equal Want's.
type URLCase[C litestream.ReplicaClient] struct {
	URL     string
	Want    C
	WantErr string
}

// RunURLCases builds a client from each case's URL through the registry
// and checks it against the case: the named exported fields of the
// client, and that both the client and litestream.ReplicaTypeFromURL say
// typ.
func RunURLCases[C litestream.ReplicaClient](t *testing.T, typ string, fields []string, cases []URLCase[C]) {
	for _, tt := range cases {
		t.Run(tt.URL, func(t *testing.T) {
			rc, err := litestream.NewReplicaClientFromURL(tt.URL)
			if tt.WantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.WantErr) {
					t.Fatalf("err = %v, want it to mention %s", err, tt.WantErr)
				}
				return
			} else if err != nil {
				t.Fatal(err)
			}
			c, ok := rc.(C)
			if !ok {
				t.Fatalf("client is a %T", rc)
			}
			if got, want := describeFields(t, c, fields), describeFields(t, tt.Want, fields); got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if c.Type() != typ || litestream.ReplicaTypeFromURL(tt.URL) != typ {
				t.Fatalf("type = %q, type from URL = %q; want %q", c.Type(), litestream.ReplicaTypeFromURL(tt.URL), typ)
			}
		})
	}
}

// describeFields prints the named fields of the struct c points to.
func describeFields(t testing.TB, c any, fields []string) string {
	t.Helper()
	v := reflect.ValueOf(c).Elem()
	var b strings.Builder
	for _, name := range fields {
		f := v.FieldByName(name)
		if !f.IsValid() {
			t.Fatalf("%T has no field %s", c, name)
		}
		fmt.Fprintf(&b, "%s=%#v ", name, f.Interface())
	}
	return b.String()
}

// RunStaleTemps puts files into dir, the directory of level under c's
// path: stale and other aged past internal.StaleTempAge, fresh new. A
// write at that level must remove the stale temporaries only, and the
// listing show only the written file.
func RunStaleTemps(t *testing.T, c litestream.ReplicaClient, level int, dir string, stale, other, fresh []string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-internal.StaleTempAge - time.Minute)
	for _, name := range slices.Concat(stale, other, fresh) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		} else if slices.Contains(fresh, name) {
			continue
		} else if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	MustWrite(t, c, level, 1000, 1000, MustLTX(t, 512, 1000, 1000, 1, time.Now()))
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Fatalf("stale temporary %s still there (stat: %v)", name, err)
		}
	}
	for _, name := range slices.Concat(other, fresh) {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%s removed: %v", name, err)
		}
	}
	if a := MustList(t, c, level, 0, false); len(a) != 1 || a[0].MinTXID != 1000 {
		t.Fatalf("listed %s, want only the file written", describeInfos(a))
	}
}

// InitCase is a client and what its Init must give: with WantErr or
// WantIs set, an error containing WantErr and matching WantIs; otherwise
// success, twice.
type InitCase struct {
	Name    string
	Client  litestream.ReplicaClient
	WantErr string
	WantIs  error
}

// RunInitCases runs Init of each case's client.
func RunInitCases(t *testing.T, cases []InitCase) {
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			err := tt.Client.Init(context.Background())
			if tt.WantErr != "" || tt.WantIs != nil {
				if err == nil || !strings.Contains(err.Error(), tt.WantErr) || (tt.WantIs != nil && !errors.Is(err, tt.WantIs)) {
					t.Fatalf("init: err = %v, want %q matching %v", err, tt.WantErr, tt.WantIs)
				}
				return
			} else if err != nil {
				t.Fatalf("init: %v", err)
			}
			if err := tt.Client.Init(context.Background()); err != nil {
				t.Fatalf("second init: %v", err)
			}
		})
	}
}

// MustReadSlowly stores a snapshot of pageN pages through c, opens it,
// reads one page, pauses (a consumer slower than the backend's request
// timeout, such as a restore applying to a slow disk) and reads the rest:
// the stream must deliver every byte.
func MustReadSlowly(t testing.TB, c litestream.ReplicaClient, pageN uint32, pause time.Duration) {
	t.Helper()
	b := MustLTX(t, 4096, 1, 1, pageN, time.Now())
	MustWrite(t, c, litestream.SnapshotLevel, 1, 1, b)
	rc, err := c.OpenLTXFile(context.Background(), litestream.SnapshotLevel, 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	first := make([]byte, 4096)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatalf("first read: %v", err)
	}
	time.Sleep(pause) // the slow consumer is the point
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading the rest of a stored file %s after the first page: %v (read %d of %d bytes)", pause, err, len(first)+len(rest), len(b))
	} else if !bytes.Equal(append(first, rest...), b) {
		t.Fatalf("read %d bytes that differ from the %d stored", len(first)+len(rest), len(b))
	}
}
