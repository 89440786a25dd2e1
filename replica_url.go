// The replica URL registry: parsing replica URLs and building clients from
// them through the factories that backend packages register.

package litestream

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ReplicaClientFactory builds a client from the parts of a replica URL.
type ReplicaClientFactory func(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (ReplicaClient, error)

var replicaClientFactories = struct {
	sync.RWMutex
	m map[string]ReplicaClientFactory
}{m: make(map[string]ReplicaClientFactory)}

// RegisterReplicaClientFactory makes a URL scheme available to
// NewReplicaClientFromURL. Backend packages register themselves in init;
// programs may register their own schemes.
func RegisterReplicaClientFactory(scheme string, factory ReplicaClientFactory) {
	replicaClientFactories.Lock()
	defer replicaClientFactories.Unlock()
	replicaClientFactories.m[scheme] = factory
}

// NewReplicaClientFromURL returns a client for a replica URL such as
// "s3://bucket/path" or "file:///var/lib/replica". The backend's package must
// be imported (it registers its scheme in init), file's included; the error
// for a scheme of this module that is not registered names the package.
// A file URL must hold an absolute path (file:///path).
func NewReplicaClientFromURL(rawURL string) (ReplicaClient, error) {
	if err := checkFileURL(rawURL); err != nil {
		return nil, err
	}
	scheme, host, urlPath, query, userinfo, err := ParseReplicaURLWithQuery(rawURL)
	if err != nil {
		return nil, err
	}
	// webdavs shares the webdav factory, which picks https from the scheme.
	lookup := scheme
	if lookup == "webdavs" {
		lookup = "webdav"
	}

	replicaClientFactories.RLock()
	factory := replicaClientFactories.m[lookup]
	replicaClientFactories.RUnlock()
	if factory == nil {
		if pkg := backendPackages[lookup]; pkg != "" {
			return nil, fmt.Errorf("unsupported replica URL scheme: %q: the backend is not linked in; add import _ %q to the program", scheme, pkg)
		}
		return nil, fmt.Errorf("unsupported replica URL scheme: %q: register a factory for it with RegisterReplicaClientFactory", scheme)
	}
	return factory(scheme, host, urlPath, query, userinfo)
}

// backendPackages names the package that registers each of this module's
// schemes, for the error when a program did not import it.
var backendPackages = map[string]string{
	"s3":     "github.com/benbjohnson/litestream/s3",
	"gs":     "github.com/benbjohnson/litestream/gs",
	"abs":    "github.com/benbjohnson/litestream/abs",
	"oss":    "github.com/benbjohnson/litestream/oss",
	"sftp":   "github.com/benbjohnson/litestream/sftp",
	"nats":   "github.com/benbjohnson/litestream/nats",
	"webdav": "github.com/benbjohnson/litestream/webdav",
	"file":   "github.com/benbjohnson/litestream/file",
}

// checkFileURL rejects file:// URLs whose path is not absolute. Parsing (as
// upstream does) turns "file://dir/sub" into "/dir/sub", which is never what
// was meant: the first segment is the URL's host. An empty path parses to
// "." (as upstream), which would replicate into the working directory.
func checkFileURL(rawURL string) error {
	if !hasPrefixFold(rawURL, "file://") {
		return nil
	}
	if rest := rawURL[len("file://"):]; strings.HasPrefix(rest, "/") {
		return nil
	}
	return fmt.Errorf("file replica URL %q has no absolute path: use file:///absolute/path (three slashes)", rawURL)
}

// ReplicaTypeFromURL returns the backend type named by a URL's scheme, or ""
// if rawURL is not a "scheme://" URL.
func ReplicaTypeFromURL(rawURL string) string {
	if !IsURL(rawURL) {
		return "" // "host:port" parses with "host" as its scheme
	}
	scheme, _, _, err := ParseReplicaURL(rawURL)
	if err != nil || scheme == "" {
		return ""
	}
	if scheme == "webdavs" {
		return "webdav"
	}
	return scheme
}

// ParseReplicaURL splits a replica URL into scheme, host and cleaned path.
func ParseReplicaURL(s string) (scheme, host, urlPath string, err error) {
	scheme, host, urlPath, _, _, err = ParseReplicaURLWithQuery(s)
	return scheme, host, urlPath, err
}

// ParseReplicaURLWithQuery splits a replica URL into its parts. The path is
// cleaned and loses its leading slash, except for file URLs, whose path is
// the absolute local path ("." when empty, as upstream).
func ParseReplicaURLWithQuery(s string) (scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo, err error) {
	// Access point ARNs hold colons that url.Parse takes for a bad port.
	if hasPrefixFold(s, "s3://arn:") {
		host, urlPath, query, err := parseS3AccessPointURL(s)
		if err != nil {
			return "", "", "", nil, nil, err
		}
		return "s3", host, urlPath, query, nil, nil
	}

	if hasPrefixFold(s, "file://") {
		p := s[len("file://"):]
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if p == "" {
			return "file", "", ".", nil, nil, nil
		}
		return "file", "", filepath.Clean("/" + strings.TrimPrefix(p, "/")), nil, nil, nil
	}

	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", nil, nil, fmt.Errorf("parse replica url %q: %w", redactURL(s), err)
	}
	if u.Scheme == "" {
		return "", "", "", nil, nil, fmt.Errorf("replica url scheme required: %s", redactURL(s))
	}

	urlPath = strings.TrimPrefix(path.Clean(u.Path), "/")
	if urlPath == "" {
		urlPath = "."
	}
	return u.Scheme, u.Host, urlPath, u.Query(), u.User, nil
}

// parseS3AccessPointURL splits "s3://arn:...:accesspoint/NAME/path?query"
// into the access point ARN (the bucket), the cleaned path and the query.
func parseS3AccessPointURL(s string) (host, urlPath string, query url.Values, err error) {
	rest := s[len("s3://"):]
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		if query, err = url.ParseQuery(rest[i+1:]); err != nil {
			return "", "", nil, fmt.Errorf("parse replica url query: %w", err)
		}
		rest = rest[:i]
	}
	const marker = ":accesspoint/"
	i := strings.Index(strings.ToLower(rest), marker)
	if i < 0 || i+len(marker) == len(rest) {
		return "", "", nil, fmt.Errorf("invalid s3 access point arn: %s", rest)
	}
	name := i + len(marker)
	if j := strings.IndexByte(rest[name:], '/'); j >= 0 {
		return rest[:name+j], CleanReplicaURLPath(rest[name+j+1:]), query, nil
	}
	return rest, "", query, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// redactURL hides a password so that errors can quote a URL safely.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return s
}

// CleanReplicaURLPath cleans p as an absolute path and drops the leading
// slash; "" and "/" give "".
func CleanReplicaURLPath(p string) string {
	if p == "" {
		return ""
	}
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "." {
		return ""
	}
	return p
}

var urlRegex = regexp.MustCompile(`^\w+://`)

// IsURL reports whether s starts with a scheme and "://".
func IsURL(s string) bool { return urlRegex.MatchString(s) }

// BoolQueryValue reads the first of keys that has a non-empty value.
// true/1/t/yes give true, anything else false; ok reports whether a key was set.
func BoolQueryValue(query url.Values, keys ...string) (value bool, ok bool) {
	if query == nil {
		return false, false
	}
	for _, key := range keys {
		v := query.Get(key)
		if v == "" {
			continue
		}
		switch strings.ToLower(v) {
		case "true", "1", "t", "yes":
			return true, true
		default:
			return false, true
		}
	}
	return false, false
}

// IntQueryValue reads the first of keys that has a non-empty value, which
// must be a positive integer.
func IntQueryValue(query url.Values, keys ...string) (value int64, ok bool, err error) {
	if query == nil {
		return 0, false, nil
	}
	for _, key := range keys {
		v := query.Get(key)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, true, fmt.Errorf("invalid value for query parameter %q: %q (must be a positive integer)", key, v)
		}
		return n, true, nil
	}
	return 0, false, nil
}

// S3-compatible endpoint helpers. The s3 package uses them to give each
// provider the settings it needs (signed payloads, path-style requests,
// concurrency); they are exported, as upstream's are, for programs that
// build clients themselves. Each takes an endpoint with or without scheme
// and port; one carrying credentials (user:pass@host) matches nothing.

// RegionFromS3ARN returns the region field of an ARN such as
// "arn:aws:s3:us-east-1:123456789012:accesspoint/name", or "" if the ARN
// has fewer than four fields.
func RegionFromS3ARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

// IsHetznerEndpoint reports whether endpoint is Hetzner object storage.
func IsHetznerEndpoint(endpoint string) bool {
	return strings.HasSuffix(endpointHostname(endpoint), ".your-objectstorage.com")
}

// IsTigrisEndpoint reports whether endpoint is Tigris.
func IsTigrisEndpoint(endpoint string) bool {
	h := endpointHostname(endpoint)
	return h == "fly.storage.tigris.dev" || h == "t3.storage.dev"
}

// IsGoogleCloudStorageEndpoint reports whether endpoint is the Google Cloud
// Storage XML API: storage.googleapis.com or a regional or private form whose
// first label has a "storage" segment (storage-us-east1.googleapis.com).
func IsGoogleCloudStorageEndpoint(endpoint string) bool {
	labels := strings.Split(strings.TrimSuffix(endpointHostname(endpoint), "."), ".")
	n := len(labels)
	if n < 3 || labels[n-2] != "googleapis" || labels[n-1] != "com" || slices.Contains(labels, "") {
		return false
	}
	// bucket.storage.googleapis.com names a bucket, not the endpoint.
	if n > 3 && slices.Contains(strings.Split(labels[1], "-"), "storage") {
		return false
	}
	return slices.Contains(strings.Split(labels[0], "-"), "storage")
}

// IsDigitalOceanEndpoint reports whether endpoint is DigitalOcean Spaces.
func IsDigitalOceanEndpoint(endpoint string) bool {
	return strings.HasSuffix(endpointHostname(endpoint), ".digitaloceanspaces.com")
}

// IsBackblazeEndpoint reports whether endpoint is Backblaze B2.
func IsBackblazeEndpoint(endpoint string) bool {
	return strings.HasSuffix(endpointHostname(endpoint), ".backblazeb2.com")
}

// IsFilebaseEndpoint reports whether endpoint is Filebase.
func IsFilebaseEndpoint(endpoint string) bool {
	return endpointHostname(endpoint) == "s3.filebase.com"
}

// IsScalewayEndpoint reports whether endpoint is Scaleway object storage.
func IsScalewayEndpoint(endpoint string) bool {
	return strings.HasSuffix(endpointHostname(endpoint), ".scw.cloud")
}

// IsCloudflareR2Endpoint reports whether endpoint is Cloudflare R2.
func IsCloudflareR2Endpoint(endpoint string) bool {
	return strings.HasSuffix(endpointHostname(endpoint), ".r2.cloudflarestorage.com")
}

// IsSupabaseEndpoint reports whether endpoint is Supabase storage.
func IsSupabaseEndpoint(endpoint string) bool {
	return strings.HasSuffix(endpointHostname(endpoint), ".supabase.co")
}

// IsMinIOEndpoint reports whether endpoint looks like a self-hosted server
// such as MinIO: it names a port and is none of the known providers.
func IsMinIOEndpoint(endpoint string) bool {
	hostport := endpointHostPort(endpoint)
	if _, port, err := net.SplitHostPort(hostport); err != nil || port == "" {
		return false
	}
	h := endpointHostname(endpoint)
	return h != "" && !strings.HasSuffix(h, ".amazonaws.com") &&
		!IsTigrisEndpoint(h) && !IsHetznerEndpoint(h) && !IsDigitalOceanEndpoint(h) &&
		!IsBackblazeEndpoint(h) && !strings.HasSuffix(h, ".filebase.com") && !IsScalewayEndpoint(h) &&
		!IsCloudflareR2Endpoint(h) && !IsSupabaseEndpoint(h) && !IsGoogleCloudStorageEndpoint(h)
}

// IsLocalEndpoint reports whether endpoint is a development or private
// server, reached over plain http: localhost, a ".local" or ".localhost"
// name, or a loopback, private or link-local address.
func IsLocalEndpoint(endpoint string) bool {
	h := endpointHostname(endpoint)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast())
}

// EnsureEndpointScheme prefixes an endpoint without http:// or https:// with
// http:// if it is local (IsLocalEndpoint) and https:// otherwise, and
// reports whether it added one. An empty endpoint stays empty.
func EnsureEndpointScheme(endpoint string) (string, bool) {
	if endpoint == "" {
		return "", false
	}
	lower := strings.ToLower(endpoint)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		return endpoint, false
	}
	if IsLocalEndpoint(endpoint) {
		return "http://" + endpoint, true
	}
	return "https://" + endpoint, true
}

// endpointHostPort returns the lower-case host[:port] of an endpoint given
// with or without scheme and path, or "" if it carries credentials.
func endpointHostPort(endpoint string) string {
	s := strings.ToLower(strings.TrimSpace(endpoint))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	if strings.Contains(s, "@") {
		return ""
	}
	return s
}

// endpointHostname returns an endpoint's lower-case host name without port.
func endpointHostname(endpoint string) string {
	s := endpointHostPort(endpoint)
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	return strings.Trim(s, "[]")
}
