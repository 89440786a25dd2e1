// Tests of replica URL parsing and the client registry's errors.
package litestream_test

import (
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// A known backend whose package is not imported gets a hint naming the
// package; this test binary imports only file.
func TestNewReplicaClientFromURL_ErrUnregistered(t *testing.T) {
	for _, tt := range []struct{ url, pkg string }{
		{"s3://bucket/db", "github.com/benbjohnson/litestream/s3"},
		{"gs://bucket/db", "github.com/benbjohnson/litestream/gs"},
		{"abs://account@container/db", "github.com/benbjohnson/litestream/abs"},
		{"oss://bucket/db", "github.com/benbjohnson/litestream/oss"},
		{"sftp://user@host/db", "github.com/benbjohnson/litestream/sftp"},
		{"nats://host/bucket", "github.com/benbjohnson/litestream/nats"},
		{"webdav://host/db", "github.com/benbjohnson/litestream/webdav"},
		{"webdavs://host/db", "github.com/benbjohnson/litestream/webdav"},
	} {
		_, err := litestream.NewReplicaClientFromURL(tt.url)
		if err == nil {
			t.Fatalf("%s: no error", tt.url)
		}
		if want := `import _ "` + tt.pkg + `"`; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %q, want it to contain %q", tt.url, err, want)
		}
	}

	_, err := litestream.NewReplicaClientFromURL("ftp://host/db")
	if err == nil || !strings.Contains(err.Error(), `unsupported replica URL scheme: "ftp"`) || !strings.Contains(err.Error(), "RegisterReplicaClientFactory") {
		t.Fatalf("ftp: err = %v", err)
	}
}

// file:// URLs must hold an absolute path: "file://dir/sub" would otherwise
// name /dir/sub, not a directory relative to the working directory.
func TestNewReplicaClientFromURL_File(t *testing.T) {
	for _, u := range []string{"file:///var/lib/replica", "file:///var/lib/replica?x=1"} {
		c, err := litestream.NewReplicaClientFromURL(u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		} else if got := c.(*file.ReplicaClient).Path(); got != "/var/lib/replica" {
			t.Fatalf("%s: path = %q", u, got)
		}
	}
	for _, u := range []string{"file://relative/dir", "file://./dir", "file://../dir", "file://localhost/var/lib"} {
		_, err := litestream.NewReplicaClientFromURL(u)
		if err == nil || !strings.Contains(err.Error(), "file:///") || !strings.Contains(err.Error(), "absolute path") {
			t.Errorf("%s: err = %v, want an error asking for file:///absolute/path", u, err)
		}
	}
}
