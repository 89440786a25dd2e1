// Tests of replica URL parsing and the client registry's errors.
package litestream_test

import (
	"slices"
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

// Each endpoint helper recognizes its provider's endpoints with or without
// scheme, port and path, in any case, and nothing else.
func TestEndpointHelpers(t *testing.T) {
	helpers := map[string]func(string) bool{
		"Hetzner":      litestream.IsHetznerEndpoint,
		"Tigris":       litestream.IsTigrisEndpoint,
		"GCS":          litestream.IsGoogleCloudStorageEndpoint,
		"DigitalOcean": litestream.IsDigitalOceanEndpoint,
		"Backblaze":    litestream.IsBackblazeEndpoint,
		"Filebase":     litestream.IsFilebaseEndpoint,
		"Scaleway":     litestream.IsScalewayEndpoint,
		"R2":           litestream.IsCloudflareR2Endpoint,
		"Supabase":     litestream.IsSupabaseEndpoint,
		"MinIO":        litestream.IsMinIOEndpoint,
		"Local":        litestream.IsLocalEndpoint,
	}
	for _, tt := range []struct {
		endpoint string
		want     []string // the helpers that match
	}{
		{"https://fsn1.your-objectstorage.com", []string{"Hetzner"}},
		{"fly.storage.tigris.dev", []string{"Tigris"}},
		{"HTTPS://T3.STORAGE.DEV/", []string{"Tigris"}},
		{"https://storage.googleapis.com", []string{"GCS"}},
		{"storage-us-east1.googleapis.com", []string{"GCS"}},
		{"https://bucket.storage.googleapis.com", nil},
		{"https://www.googleapis.com", nil},
		{"nyc3.digitaloceanspaces.com", []string{"DigitalOcean"}},
		{"https://s3.us-west-002.backblazeb2.com", []string{"Backblaze"}},
		{"https://s3.filebase.com", []string{"Filebase"}},
		{"https://s3.fr-par.scw.cloud", []string{"Scaleway"}},
		{"https://acct.r2.cloudflarestorage.com", []string{"R2"}},
		{"https://proj.supabase.co/storage/v1/s3", []string{"Supabase"}},
		{"http://minio.internal:9000", []string{"MinIO"}},
		{"http://localhost:9000", []string{"MinIO", "Local"}},
		{"127.0.0.1:9000", []string{"MinIO", "Local"}},
		{"http://10.1.2.3", []string{"Local"}},
		{"192.168.0.5", []string{"Local"}},
		{"nas.local", []string{"Local"}},
		{"https://s3.us-east-1.amazonaws.com", nil},
		{"https://s3.us-east-1.amazonaws.com:443", nil},
		{"https://acct.r2.cloudflarestorage.com:443", []string{"R2"}},
		{"172.32.0.1", nil},
		{"https://user:pass@fly.storage.tigris.dev", nil},
		{"", nil},
	} {
		for name, fn := range helpers {
			if got, want := fn(tt.endpoint), slices.Contains(tt.want, name); got != want {
				t.Errorf("Is%sEndpoint(%q) = %v, want %v", name, tt.endpoint, got, want)
			}
		}
	}
}

func TestEnsureEndpointScheme(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		added    bool
	}{
		{"", "", false},
		{"https://s3.example.com", "https://s3.example.com", false},
		{"http://s3.example.com", "http://s3.example.com", false},
		{"s3.example.com", "https://s3.example.com", true},
		{"localhost:9000", "http://localhost:9000", true},
		{"192.168.1.10:9000", "http://192.168.1.10:9000", true},
	} {
		if got, added := litestream.EnsureEndpointScheme(tt.in); got != tt.want || added != tt.added {
			t.Errorf("EnsureEndpointScheme(%q) = %q, %v; want %q, %v", tt.in, got, added, tt.want, tt.added)
		}
	}
}

func TestRegionFromS3ARN(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:s3:us-east-1:123456789012:accesspoint/db-access": "us-east-1",
		"arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/x":     "cn-north-1",
		"arn:aws:s3:::bucket": "",
		"arn:aws:s3":          "",
		"":                    "",
	} {
		if got := litestream.RegionFromS3ARN(arn); got != want {
			t.Errorf("RegionFromS3ARN(%q) = %q, want %q", arn, got, want)
		}
	}
}
