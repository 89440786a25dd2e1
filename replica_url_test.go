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

// Access point ARNs hold colons that url.Parse rejects; they are split by
// hand, with any case of the scheme, the query kept out of the host.
func TestParseReplicaURLWithQuery_S3AccessPoint(t *testing.T) {
	const arn = "arn:aws:s3:us-east-1:123456789012:accesspoint/my-ap"
	for _, tt := range []struct{ url, path, region string }{
		{"s3://" + arn + "/path?region=us-west-2", "path", "us-west-2"},
		{"s3://" + arn + "?region=us-west-2", "", "us-west-2"},
		{"s3://" + arn + "/a/b/?region=eu-west-1", "a/b", "eu-west-1"},
		{"s3://" + arn, "", ""},
		{"S3://" + arn + "/path?region=us-west-2", "path", "us-west-2"},
		{"s3://ARN:aws:s3:us-east-1:123456789012:AccessPoint/my-ap/path", "path", ""},
	} {
		scheme, host, p, query, _, err := litestream.ParseReplicaURLWithQuery(tt.url)
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		wantHost := tt.url[len("s3://"):]
		wantHost = wantHost[:strings.Index(wantHost, "my-ap")+len("my-ap")]
		if scheme != "s3" || host != wantHost || p != tt.path || query.Get("region") != tt.region {
			t.Errorf("%s: got %q %q %q region=%q, want s3 %q %q region=%q", tt.url, scheme, host, p, query.Get("region"), wantHost, tt.path, tt.region)
		}
		if scheme, host2, p2, err := litestream.ParseReplicaURL(tt.url); err != nil || scheme != "s3" || host2 != host || p2 != p {
			t.Errorf("ParseReplicaURL(%s) = %q %q %q %v", tt.url, scheme, host2, p2, err)
		}
	}
	if _, _, _, _, _, err := litestream.ParseReplicaURLWithQuery("s3://arn:aws:s3:::bucket/path"); err == nil {
		t.Error("an ARN that is no access point: no error")
	}
}

// Upstream's answers for the edges: a URL needs "scheme://", an empty file
// path is ".", and the scheme's case does not matter.
func TestParseReplicaURL_Edges(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"localhost:8080", ""},
		{"bucket:1234", ""},
		{"127.0.0.1:9000", ""},
		{"/var/lib/db", ""},
		{"s3://bucket/db", "s3"},
		{"webdavs://host/db", "webdav"},
		{"FILE:///var/lib/db", "file"},
	} {
		if got := litestream.ReplicaTypeFromURL(tt.url); got != tt.want {
			t.Errorf("ReplicaTypeFromURL(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	for _, tt := range []struct{ url, path string }{
		{"file://", "."},
		{"file://?x=1", "."},
		{"file:///", "/"},
		{"FILE:///var/lib/db", "/var/lib/db"},
		{"File:///var/lib/db?x=1", "/var/lib/db"},
	} {
		scheme, host, p, err := litestream.ParseReplicaURL(tt.url)
		if err != nil || scheme != "file" || host != "" || p != tt.path {
			t.Errorf("ParseReplicaURL(%q) = %q %q %q %v, want file \"\" %q", tt.url, scheme, host, p, err, tt.path)
		}
	}
	// "." is a relative path: rejected, as file://relative is.
	if _, err := litestream.NewReplicaClientFromURL("file://"); err == nil || !strings.Contains(err.Error(), "file:///") {
		t.Errorf("file://: err = %v, want an error asking for file:///absolute/path", err)
	}
	c, err := litestream.NewReplicaClientFromURL("FILE:///var/lib/replica")
	if err != nil {
		t.Fatal(err)
	} else if got := c.(*file.ReplicaClient).Path(); got != "/var/lib/replica" {
		t.Fatalf("FILE:///var/lib/replica: path = %q", got)
	}
}
