// Tests of the Azure Blob Storage client against Azurite.
package abs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
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

// mustAzurite starts Azurite and creates a container of the test's own.
func mustAzurite(t testing.TB) clienttest.Fixture {
	t.Helper()
	srv := testserver.StartAzurite(t)
	name := clienttest.UniqueName()
	cred, err := container.NewSharedKeyCredential(testserver.AzuriteAccountName, testserver.AzuriteAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientWithSharedKeyCredential(srv.Endpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cc.Create(ctx, nil); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	// list returns the container's blobs under prefix with their metadata.
	list := func(t testing.TB, prefix string) []*container.BlobItem {
		t.Helper()
		var items []*container.BlobItem
		pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: to.Ptr(prefix), Include: container.ListBlobsInclude{Metadata: true}})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("list %s: %v", prefix, err)
			}
			items = append(items, page.Segment.BlobItems...)
		}
		return items
	}
	return clienttest.Fixture{
		NewClient: func(t testing.TB, path string) litestream.ReplicaClient {
			c := abs.NewReplicaClient()
			c.AccountName, c.AccountKey = testserver.AzuriteAccountName, testserver.AzuriteAccountKey
			c.Endpoint, c.Bucket, c.Path = srv.Endpoint, name, path
			return c
		},
		Layout: clienttest.LayoutLevelDir,
		Names: func(t testing.TB) []string {
			var names []string
			for _, item := range list(t, "") {
				names = append(names, *item.Name)
			}
			return names // in name order
		},
		Get: func(name string) (io.ReadCloser, error) {
			resp, err := cc.NewBlobClient(name).DownloadStream(ctx, nil)
			if err != nil {
				return nil, err
			}
			return resp.Body, nil
		},
		Put: func(t testing.TB, name string, data []byte) {
			t.Helper()
			if _, err := cc.NewBlockBlobClient(name).UploadBuffer(ctx, data, nil); err != nil {
				t.Fatalf("upload %s: %v", name, err)
			}
		},
		Stamp: func(t testing.TB, name string) string {
			for _, item := range list(t, name) {
				if v := item.Metadata[abs.MetadataKeyTimestamp]; *item.Name == name && v != nil {
					return *v
				}
			}
			return ""
		},
	}
}

// TestReplicaClient_Suites runs the shared suites on Azurite, v0.3.x's
// backups uploaded through the plain Azure SDK.
func TestReplicaClient_Suites(t *testing.T) {
	t.Parallel()
	clienttest.RunBackend(t, clienttest.Backend{Start: mustAzurite, V3: true, Leasing: true})
}

// TestReplicaClient_LTXFiles covers the seek fix (upstream appended the seek
// TXID to the list prefix, so only names starting with that exact hex were
// returned) and a container that does not exist yet.
func TestReplicaClient_LTXFiles(t *testing.T) {
	t.Parallel()
	fx := mustAzurite(t)
	ctx := context.Background()

	t.Run("SeekIsMinimum", func(t *testing.T) {
		c := fx.NewClient(t, "p")
		for _, txid := range []ltx.TXID{1, 2, 0x10, 0x21, 0x200} {
			if _, err := c.WriteLTXFile(ctx, 0, txid, txid, bytes.NewReader(clienttest.MustLTX(t, 512, txid, txid, 1, time.Now()))); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range []struct {
			seek ltx.TXID
			want string
		}{{2, "2 16 33 512"}, {3, "16 33 512"}, {0x20, "33 512"}, {0x201, ""}} {
			var got []string
			for _, info := range clienttest.MustList(t, c, 0, tt.seek, false) {
				got = append(got, strconv.FormatUint(uint64(info.MinTXID), 10))
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("seek %d: got MinTXIDs %v, want %s", tt.seek, got, tt.want)
			}
		}
	})

	t.Run("MissingContainer", func(t *testing.T) {
		c := fx.NewClient(t, "p").(*abs.ReplicaClient)
		c.Bucket = "nosuchcontainer"
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
	c := mustAzurite(t).NewClient(t, "p")
	ctx := context.Background()
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
	if a := clienttest.MustList(t, c, 0, 0, false); len(a) != 1 || a[0].MinTXID != keep.MinTXID {
		t.Fatalf("after delete listed %d files, want only %s", len(a), keep.MinTXID)
	}
	if got := clienttest.MustRead(t, c, 0, keep.MinTXID, keep.MaxTXID, 0, 0); !bytes.Equal(got, b) {
		t.Fatalf("kept file: %d bytes, want the %d written", len(got), len(b))
	}
}

func TestReplicaClient_Init(t *testing.T) {
	clienttest.RunInitCases(t, []clienttest.InitCase{
		{Name: "ErrNoContainer", Client: &abs.ReplicaClient{AccountName: "a", AccountKey: "a2V5"}, WantErr: "container required"},
		{Name: "ErrNoAccount", Client: &abs.ReplicaClient{Bucket: "b", AccountKey: "a2V5"}, WantErr: "account name or endpoint required"},
		{Name: "ErrKeyWithoutAccount", Client: &abs.ReplicaClient{Bucket: "b", Endpoint: "http://127.0.0.1:1/x", AccountKey: "a2V5"}, WantErr: "account name required"},
		{Name: "OKSAS", Client: &abs.ReplicaClient{Bucket: "b", AccountName: "a", SASToken: "?sv=x&sig=y"}},
		{Name: "OKSharedKey", Client: &abs.ReplicaClient{Bucket: "b", AccountName: "a", AccountKey: "a2V5"}},
	})
}

func TestNewReplicaClientFromURL(t *testing.T) {
	clienttest.RunURLCases(t, "abs", []string{"AccountName", "Bucket", "Path"}, []clienttest.URLCase[*abs.ReplicaClient]{
		{URL: "abs://mycontainer/db/replica", Want: &abs.ReplicaClient{Bucket: "mycontainer", Path: "db/replica"}},
		{URL: "abs://myaccount@mycontainer/db", Want: &abs.ReplicaClient{AccountName: "myaccount", Bucket: "mycontainer", Path: "db"}},
		{URL: "abs://mycontainer", Want: &abs.ReplicaClient{Bucket: "mycontainer"}},
		{URL: "abs://mycontainer/", Want: &abs.ReplicaClient{Bucket: "mycontainer"}},
		{URL: "abs://mycontainer//a/../b/", Want: &abs.ReplicaClient{Bucket: "mycontainer", Path: "b"}},

		{URL: "abs:///db", WantErr: "container required"},
		{URL: "abs://", WantErr: "container required"},
		{URL: "abs://a b/x", WantErr: "invalid character"},
	})
}
