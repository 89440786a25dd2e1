// Building an OSS client from an oss:// replica URL.

package oss

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/benbjohnson/litestream"
)

// NewReplicaClientFromURL builds a client from the parts of an oss:// URL
// (forms and query parameters in the package documentation).
func NewReplicaClientFromURL(scheme, host, urlPath string, query url.Values, userinfo *url.Userinfo) (litestream.ReplicaClient, error) {
	if scheme != "oss" {
		return nil, fmt.Errorf("oss replica url: unexpected scheme %q", scheme)
	}
	bucket, region, endpoint := ParseHost(host)
	if bucket == "" {
		return nil, fmt.Errorf("oss replica url: bucket required in host %q", host)
	}
	for k := range query {
		if k != "endpoint" && k != "region" {
			return nil, fmt.Errorf("oss replica url: unsupported query parameter %q", k)
		}
	}
	if v := query.Get("endpoint"); v != "" {
		u, err := url.Parse(EnsureEndpointScheme(v))
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("oss replica url: invalid endpoint %q", v)
		}
		endpoint = u.String()
	}
	if v := query.Get("region"); v != "" {
		region = v
	}
	c := NewReplicaClient()
	c.Bucket, c.Region, c.Endpoint = bucket, region, endpoint
	c.Path = litestream.CleanReplicaURLPath(urlPath)
	return c, nil
}

func init() {
	litestream.RegisterReplicaClientFactory("oss", NewReplicaClientFromURL)
}

var hostRegex = regexp.MustCompile(`^([^.]+)\.(oss-([a-z0-9-]+?)(-internal)?\.aliyuncs\.com)$`)

// ParseHost extracts the bucket, region and endpoint from an oss:// URL host:
// "bucket" alone, or "bucket.oss-<region>[-internal].aliyuncs.com" (the
// region excludes "-internal"; the endpoint keeps it, with https://).
func ParseHost(host string) (bucket, region, endpoint string) {
	if m := hostRegex.FindStringSubmatch(host); m != nil {
		return m[1], m[3], "https://" + m[2]
	}
	return host, "", ""
}

// ParseURL splits an oss:// URL into bucket, region and key.
func ParseURL(s string) (bucket, region, key string, err error) {
	scheme, host, urlPath, _, _, err := litestream.ParseReplicaURLWithQuery(s)
	if err != nil {
		return "", "", "", err
	} else if scheme != "oss" {
		return "", "", "", be.Errorf("invalid url scheme %q", scheme)
	}
	bucket, region, _ = ParseHost(host)
	if bucket == "" {
		return "", "", "", be.Errorf("bucket required in url %q", s)
	}
	return bucket, region, litestream.CleanReplicaURLPath(urlPath), nil
}

// EnsureEndpointScheme returns an endpoint with a scheme: one that has any
// scheme stays as it is, and a bare one gets http:// when it is local and
// https:// otherwise, by litestream.EnsureEndpointScheme's rule.
func EnsureEndpointScheme(endpoint string) string {
	if strings.Contains(endpoint, "://") {
		return endpoint
	}
	withScheme, _ := litestream.EnsureEndpointScheme(endpoint)
	return withScheme
}
