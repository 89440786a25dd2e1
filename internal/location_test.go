// Tests of replica location formatting.
package internal_test

import (
	"testing"

	"github.com/benbjohnson/litestream/internal"
)

func TestReplicaLocation(t *testing.T) {
	for _, tt := range []struct{ base, path, want string }{
		{"s3://bucket", "db", "s3://bucket/db"},
		{"s3://bucket", "", "s3://bucket"},
		{"s3://bucket", "/a/b/", "s3://bucket/a/b"},
		{"https://user:secret@host:8080", "dav", "https://user@host:8080/dav"},
		{"sftp://" + internal.UserAt("") + "host", "p", "sftp://host/p"},
		{"sftp://" + internal.UserAt("me") + "host", "p", "sftp://me@host/p"},
	} {
		if got := internal.ReplicaLocation(tt.base, tt.path); got != tt.want {
			t.Errorf("ReplicaLocation(%q, %q) = %q, want %q", tt.base, tt.path, got, tt.want)
		}
	}
}
