// Building an S3 client from an s3:// replica URL: bucket, region and
// endpoint from the host's forms, options from the query.

package s3

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/benbjohnson/litestream"
)

// NewReplicaClientFromURL builds a client from the parts of an s3:// URL:
//
//	s3://bucket/path
//	s3://bucket.s3.REGION.amazonaws.com/path
//	s3://bucket.host:port/path                         (S3-compatible, path-style, http)
//	s3://bucket.REGION.digitaloceanspaces.com/path     (and Backblaze, Filebase, Scaleway forms)
//	s3://arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME/path
//
// Query parameters are listed in the package documentation. Credentials come
// from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else
// LITESTREAM_ACCESS_KEY_ID/LITESTREAM_SECRET_ACCESS_KEY, else the SDK's default
// chain at Init.
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	if scheme != "s3" {
		return nil, fmt.Errorf("s3 replica url: unexpected scheme %q", scheme)
	}
	c := NewReplicaClient()

	var bucket, region, endpoint string
	var forcePathStyle bool
	if strings.HasPrefix(host, "arn:") {
		bucket, region = host, litestream.RegionFromS3ARN(host)
		if region == "" {
			return nil, fmt.Errorf("s3 replica url: access point arn %q has no region", host)
		}
	} else {
		bucket, region, endpoint, forcePathStyle = ParseHost(host)
	}
	if bucket == "" {
		return nil, fmt.Errorf("s3 replica url: bucket required in host %q", host)
	}

	pathStyleSet := false
	if v, ok := litestream.BoolQueryValue(query, "forcePathStyle", "force-path-style"); ok {
		forcePathStyle, pathStyleSet = v, true
	}

	queryEndpoint := firstQuery(query, "endpoint")
	if queryEndpoint == "" && endpoint == "" {
		queryEndpoint = envEndpoint()
	}
	if queryEndpoint != "" {
		withScheme, _ := litestream.EnsureEndpointScheme(queryEndpoint)
		u, err := url.Parse(withScheme)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("s3 replica url: invalid endpoint %q", queryEndpoint)
		}
		endpoint = u.String()
		if !pathStyleSet {
			forcePathStyle = true
		}
	}
	if v := firstQuery(query, "region"); v != "" {
		region = v
	}

	c.Bucket, c.Path, c.Region, c.Endpoint, c.ForcePathStyle = bucket, cleanPath(urlPath), region, endpoint, forcePathStyle

	if v, ok := litestream.BoolQueryValue(query, "skipVerify", "skip-verify"); ok {
		c.SkipVerify = v
	}
	signPayloadSet, md5Set := false, false
	if v, ok := litestream.BoolQueryValue(query, "signPayload", "sign-payload"); ok {
		c.SignPayload, signPayloadSet = v, true
	}
	if v, ok := litestream.BoolQueryValue(query, "requireContentMD5", "require-content-md5"); ok {
		c.RequireContentMD5, md5Set = v, true
	}
	if n, ok, err := litestream.IntQueryValue(query, "concurrency"); err != nil {
		return nil, fmt.Errorf("s3 replica url: %w", err)
	} else if ok {
		c.Concurrency = int(n)
	}
	if n, ok, err := litestream.IntQueryValue(query, "partSize", "part-size"); err != nil {
		return nil, fmt.Errorf("s3 replica url: %w", err)
	} else if ok {
		c.PartSize = n
	}
	c.StorageClass = firstQuery(query, "storageClass", "storage-class")
	c.SSECustomerAlgorithm = firstQuery(query, "sseCustomerAlgorithm", "sse-customer-algorithm")
	c.SSECustomerKey = firstQuery(query, "sseCustomerKey", "sse-customer-key")
	c.SSECustomerKeyMD5 = firstQuery(query, "sseCustomerKeyMD5", "sse-customer-key-md5")
	c.SSEKMSKeyID = firstQuery(query, "sseKmsKeyId", "sse-kms-key-id")

	applyProviderDefaults(c, signPayloadSet, md5Set, pathStyleSet)

	c.AccessKeyID, c.SecretAccessKey = envCredentials()
	return c, nil
}

func init() {
	litestream.RegisterReplicaClientFactory("s3", NewReplicaClientFromURL)
}

// applyProviderDefaults sets what a known S3-compatible provider needs,
// unless the URL said otherwise.
func applyProviderDefaults(c *ReplicaClient, signPayloadSet, md5Set, pathStyleSet bool) {
	if c.Endpoint == "" {
		return
	}
	e := c.Endpoint
	switch {
	case litestream.IsTigrisEndpoint(e):
		if !signPayloadSet {
			c.SignPayload = true
		}
		if !md5Set {
			c.RequireContentMD5 = false
		}
	case litestream.IsCloudflareR2Endpoint(e):
		if !signPayloadSet {
			c.SignPayload = true
		}
		if c.Concurrency == 0 {
			c.Concurrency = DefaultR2Concurrency
		}
	case litestream.IsFilebaseEndpoint(e), litestream.IsBackblazeEndpoint(e), litestream.IsSupabaseEndpoint(e), litestream.IsMinIOEndpoint(e):
		if !signPayloadSet {
			c.SignPayload = true
		}
		if !pathStyleSet {
			c.ForcePathStyle = true
		}
	case litestream.IsHetznerEndpoint(e), litestream.IsDigitalOceanEndpoint(e), litestream.IsScalewayEndpoint(e):
		if !signPayloadSet {
			c.SignPayload = true
		}
	}
}

var (
	awsHostRegex          = regexp.MustCompile(`^(.+)\.s3[.-]([a-z0-9-]+)\.amazonaws\.com$`)
	awsGlobalHostRegex    = regexp.MustCompile(`^(.+)\.s3\.amazonaws\.com$`)
	backblazeHostRegex    = regexp.MustCompile(`^(?:(.+)\.)?s3\.([^.]+)\.backblazeb2\.com$`)
	filebaseHostRegex     = regexp.MustCompile(`^(?:(.+)\.)?s3\.filebase\.com$`)
	digitalOceanHostRegex = regexp.MustCompile(`^(?:(.+)\.)?([^.]+)\.digitaloceanspaces\.com$`)
	scalewayHostRegex     = regexp.MustCompile(`^(?:(.+)\.)?s3\.([^.]+)\.scw\.cloud$`)
)

// ParseHost extracts the bucket, region, endpoint and addressing style from
// the host of an s3:// URL. A plain name is an AWS bucket. A host with a port
// and no ".com" is "bucket.endpoint:port" of an S3-compatible server reached
// over http with path-style requests. Provider virtual-host forms
// (DigitalOcean, Backblaze, Filebase, Scaleway) give that provider's endpoint.
func ParseHost(host string) (bucket, region, endpoint string, forcePathStyle bool) {
	hostname, port, err := net.SplitHostPort(host)
	if err != nil {
		hostname, port = host, ""
	}

	if port != "" && !strings.Contains(hostname, ".com") {
		b, rest, ok := strings.Cut(hostname, ".")
		if !ok {
			return hostname, "", "", false
		}
		return b, DefaultRegion, "http://" + net.JoinHostPort(rest, port), true
	}

	withPort := func(h string) string {
		if port != "" {
			h = net.JoinHostPort(h, port)
		}
		return "https://" + h
	}
	switch {
	case awsHostRegex.MatchString(hostname):
		a := awsHostRegex.FindStringSubmatch(hostname)
		return a[1], a[2], "", false
	case awsGlobalHostRegex.MatchString(hostname):
		return awsGlobalHostRegex.FindStringSubmatch(hostname)[1], "", "", false
	case backblazeHostRegex.MatchString(hostname):
		a := backblazeHostRegex.FindStringSubmatch(hostname)
		return a[1], a[2], withPort("s3." + a[2] + ".backblazeb2.com"), true
	case filebaseHostRegex.MatchString(hostname):
		a := filebaseHostRegex.FindStringSubmatch(hostname)
		return a[1], DefaultRegion, withPort("s3.filebase.com"), true
	case digitalOceanHostRegex.MatchString(hostname):
		a := digitalOceanHostRegex.FindStringSubmatch(hostname)
		return a[1], a[2], withPort(a[2] + ".digitaloceanspaces.com"), false
	case scalewayHostRegex.MatchString(hostname):
		a := scalewayHostRegex.FindStringSubmatch(hostname)
		return a[1], a[2], withPort("s3." + a[2] + ".scw.cloud"), false
	}
	return hostname, "", "", false
}

// ParseURL splits an s3:// URL into bucket, region and key. When endpoint is
// set the whole host is the bucket name (as with a custom endpoint the host
// carries no provider information).
func ParseURL(s, endpoint string) (bucket, region, key string, err error) {
	scheme, host, urlPath, _, _, err := litestream.ParseReplicaURLWithQuery(s)
	if err != nil {
		return "", "", "", err
	} else if scheme != "s3" {
		return "", "", "", be.Errorf("invalid url scheme %q", scheme)
	}
	switch {
	case strings.HasPrefix(host, "arn:"):
		bucket, region = host, litestream.RegionFromS3ARN(host)
	case endpoint != "":
		bucket = host
	default:
		bucket, region, _, _ = ParseHost(host)
	}
	if bucket == "" {
		return "", "", "", be.Errorf("bucket required in url %q", s)
	}
	return bucket, region, cleanPath(urlPath), nil
}

func firstQuery(query url.Values, keys ...string) string {
	for _, k := range keys {
		if v := query.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// cleanPath turns the registry's "." (no path) into "".
func cleanPath(p string) string {
	if p == "." || p == "/" {
		return ""
	}
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}
