// Replica locations as backends print them in error messages.

package internal

import (
	"net/url"
	"strings"
)

// ReplicaLocation joins a base URL (scheme://[user@]host[/...]) and a path
// under it, dropping any password in base, e.g. "s3://bucket/db".
func ReplicaLocation(base, p string) string {
	if u, err := url.Parse(base); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		base = u.String()
	}
	if p = strings.Trim(p, "/"); p == "" {
		return base
	}
	return strings.TrimSuffix(base, "/") + "/" + p
}

// UserAt returns "user@", or "" for no user.
func UserAt(user string) string {
	if user == "" {
		return ""
	}
	return user + "@"
}
