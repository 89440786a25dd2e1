// Tests of the Azure Blob Storage client against Azurite.
package abs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/abs"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/benbjohnson/litestream/internal/testserver"
	"github.com/superfly/ltx"
)

// MustStartAzurite starts Azurite and creates a container in it.
func MustStartAzurite(t testing.TB, containerName string) *testserver.Azurite {
	t.Helper()
	srv := testserver.StartAzurite(t)
	cc := MustContainerClient(t, srv, containerName)
	if _, err := cc.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container %s: %v", containerName, err)
	}
	return srv
}

// MustContainerClient returns a raw SDK client for a container in Azurite.
func MustContainerClient(t testing.TB, srv *testserver.Azurite, containerName string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(testserver.AzuriteAccountName, testserver.AzuriteAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientWithSharedKeyCredential(srv.Endpoint+"/"+containerName, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// NewTestClient returns a client for Azurite using the shared key.
func NewTestClient(srv *testserver.Azurite, containerName, path string) *abs.ReplicaClient {
	c := abs.NewReplicaClient()
	c.AccountName = testserver.AzuriteAccountName
	c.AccountKey = testserver.AzuriteAccountKey
	c.Endpoint = srv.Endpoint
	c.Bucket = containerName
	c.Path = path
	return c
}

func TestReplicaClient_Conformance(t *testing.T) {
	t.Parallel()
	srv := MustStartAzurite(t, "conformance")
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return NewTestClient(srv, "conformance", path)
	}, clienttest.Options{ListRaw: rawLister(MustContainerClient(t, srv, "conformance")), RootPath: true})
}

// rawLister lists a client's blobs with the plain Azure SDK.
func rawLister(cc *container.Client) clienttest.ListRawFunc {
	return func(t testing.TB, path string) []clienttest.RawObject {
		t.Helper()
		ctx := context.Background()
		var objects []clienttest.RawObject
		pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: to.Ptr(path + "/")})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("list %s: %v", path, err)
			}
			for _, item := range page.Segment.BlobItems {
				name := *item.Name
				objects = append(objects, clienttest.RawObject{
					Key: strings.TrimPrefix(name, path+"/"),
					Open: func() (io.ReadCloser, error) {
						resp, err := cc.NewBlobClient(name).DownloadStream(ctx, nil)
						if err != nil {
							return nil, err
						}
						return resp.Body, nil
					},
				})
			}
		}
		return objects
	}
}

// TestReplicaClient_KeyLayout checks the raw blob names and metadata that
// upstream Litestream reads and writes.
func TestReplicaClient_KeyLayout(t *testing.T) {
	t.Parallel()
	srv := MustStartAzurite(t, "layout")
	ctx := context.Background()
	ts := time.Date(2022, 3, 4, 5, 6, 7, 890e6, time.UTC)
	for _, path := range []string{"db/replica", ""} {
		c := NewTestClient(srv, "layout", path)
		clienttest.MustWriteLayout(t, c, ts, []clienttest.LayoutFile{
			{Level: 0, Min: 1, Max: 1}, {Level: 1, Min: 1, Max: 0x2f}, {Level: 9, Min: 1, Max: 0x100},
		})
	}

	cc := MustContainerClient(t, srv, "layout")
	pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}})
	var got []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Segment.BlobItems {
			got = append(got, *item.Name)
			if v := item.Metadata[abs.MetadataKeyTimestamp]; v == nil || *v != "2022-03-04T05:06:07.89Z" {
				t.Errorf("%s: metadata %s = %v, want 2022-03-04T05:06:07.89Z", *item.Name, abs.MetadataKeyTimestamp, v)
			}
		}
	}
	sort.Strings(got)
	want := []string{
		"db/replica/ltx/0/0000000000000001-0000000000000001.ltx",
		"db/replica/ltx/1/0000000000000001-000000000000002f.ltx",
		"db/replica/ltx/9/0000000000000001-0000000000000100.ltx",
		"ltx/0/0000000000000001-0000000000000001.ltx",
		"ltx/1/0000000000000001-000000000000002f.ltx",
		"ltx/9/0000000000000001-0000000000000100.ltx",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("blob names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReplicaClient_LTXFiles covers the seek fix (upstream appended the seek
// TXID to the list prefix, so only names starting with that exact hex were
// returned) and a container that does not exist yet.
func TestReplicaClient_LTXFiles(t *testing.T) {
	t.Parallel()
	srv := MustStartAzurite(t, "seek")
	ctx := context.Background()

	t.Run("SeekIsMinimum", func(t *testing.T) {
		c := NewTestClient(srv, "seek", "p")
		for _, txid := range []ltx.TXID{1, 2, 0x10, 0x21, 0x200} {
			if _, err := c.WriteLTXFile(ctx, 0, txid, txid, bytes.NewReader(clienttest.MustLTX(t, 512, txid, txid, 1, time.Now()))); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range []struct {
			seek ltx.TXID
			want string
		}{{2, "2 16 33 512"}, {3, "16 33 512"}, {0x20, "33 512"}, {0x201, ""}} {
			itr, err := c.LTXFiles(ctx, 0, tt.seek, false)
			if err != nil {
				t.Fatal(err)
			}
			a, err := ltx.SliceFileIterator(itr)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, info := range a {
				got = append(got, strconv.FormatUint(uint64(info.MinTXID), 10))
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("seek %d: got MinTXIDs %v, want %s", tt.seek, got, tt.want)
			}
		}
	})

	t.Run("MissingContainer", func(t *testing.T) {
		c := NewTestClient(srv, "nosuchcontainer", "p")
		itr, err := c.LTXFiles(ctx, 0, 0, true)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if a, err := ltx.SliceFileIterator(itr); err != nil || len(a) != 0 {
			t.Fatalf("list = %v, %v; want empty", a, err)
		}
		if _, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open: err = %v, want os.ErrNotExist", err)
		}
		if err := c.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 0, MinTXID: 1, MaxTXID: 1}}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := c.DeleteAll(ctx); err != nil {
			t.Fatalf("delete all: %v", err)
		}
	})
}

// TestReplicaClient_DeleteLTXFiles deletes more files than one batch holds.
func TestReplicaClient_DeleteLTXFiles(t *testing.T) {
	t.Parallel()
	srv := MustStartAzurite(t, "batch")
	ctx := context.Background()
	c := NewTestClient(srv, "batch", "p")
	var infos []*ltx.FileInfo
	b := clienttest.MustLTX(t, 512, 1, 1, 1, time.Now())
	for txid := ltx.TXID(1); txid <= 300; txid++ {
		infos = append(infos, &ltx.FileInfo{Level: 0, MinTXID: txid, MaxTXID: txid})
		if txid%7 == 0 {
			continue // leave gaps: missing files must be ignored
		}
		if _, err := c.WriteLTXFile(ctx, 0, txid, txid, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	keep := infos[299]
	if err := c.DeleteLTXFiles(ctx, infos[:299]); err != nil {
		t.Fatalf("delete: %v", err)
	}
	itr, err := c.LTXFiles(ctx, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ltx.SliceFileIterator(itr)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 1 || a[0].MinTXID != keep.MinTXID {
		t.Fatalf("after delete listed %d files, want only %s", len(a), keep.MinTXID)
	}
	rc, err := c.OpenLTXFile(ctx, 0, keep.MinTXID, keep.MaxTXID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("kept file: %d bytes, %v", len(got), err)
	}
}

func TestReplicaClient_Init(t *testing.T) {
	for _, tt := range []struct {
		name    string
		c       *abs.ReplicaClient
		wantErr string
	}{
		{"ErrNoContainer", &abs.ReplicaClient{AccountName: "a", AccountKey: "a2V5"}, "container required"},
		{"ErrNoAccount", &abs.ReplicaClient{Bucket: "b", AccountKey: "a2V5"}, "account name or endpoint required"},
		{"ErrKeyWithoutAccount", &abs.ReplicaClient{Bucket: "b", Endpoint: "http://127.0.0.1:1/x", AccountKey: "a2V5"}, "account name required"},
		{"OKSAS", &abs.ReplicaClient{Bucket: "b", AccountName: "a", SASToken: "?sv=x&sig=y"}, ""},
		{"OKSharedKey", &abs.ReplicaClient{Bucket: "b", AccountName: "a", AccountKey: "a2V5"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Init(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("init: %v", err)
				}
				if err := tt.c.Init(context.Background()); err != nil {
					t.Fatalf("second init: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("init: err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewReplicaClientFromURL(t *testing.T) {
	for _, tt := range []struct {
		url                   string
		account, bucket, path string
		wantErr               string
	}{
		{url: "abs://mycontainer/db/replica", bucket: "mycontainer", path: "db/replica"},
		{url: "abs://myaccount@mycontainer/db", account: "myaccount", bucket: "mycontainer", path: "db"},
		{url: "abs://mycontainer", bucket: "mycontainer", path: ""},
		{url: "abs://mycontainer/", bucket: "mycontainer", path: ""},
		{url: "abs://mycontainer//a/../b/", bucket: "mycontainer", path: "b"},
		{url: "abs:///db", wantErr: "container required"},
		{url: "abs://", wantErr: "container required"},
		{url: "abs://a b/x", wantErr: "invalid character"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			rc := clienttest.MustClientFromURL(t, tt.url, tt.wantErr)
			if rc == nil {
				return
			}
			c := rc.(*abs.ReplicaClient)
			if c.AccountName != tt.account || c.Bucket != tt.bucket || c.Path != tt.path {
				t.Fatalf("got account=%q bucket=%q path=%q, want %q %q %q", c.AccountName, c.Bucket, c.Path, tt.account, tt.bucket, tt.path)
			}
			if c.Type() != "abs" || litestream.ReplicaTypeFromURL(tt.url) != "abs" {
				t.Fatalf("type = %q", c.Type())
			}
		})
	}
}
