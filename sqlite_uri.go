// sqlite_uri.go builds the SQLite URIs the library opens database files
// with.

package litestream

import "strings"

// uriPathEscaper escapes what a SQLite URI's path would otherwise read as
// syntax: '?' starts the query, '#' the fragment, '%' an escape.
var uriPathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// sqliteFileURI returns the URI naming the file at path for
// sql.Open("sqlite", ...), with query (parameters without the '?') when set.
// "file:"+path would open another file when path holds '?', '#' or '%'.
func sqliteFileURI(path, query string) string {
	esc := uriPathEscaper.Replace(path)
	if strings.HasPrefix(esc, "//") {
		esc = "//" + esc // "file://x" names host x; an empty authority keeps the path
	}
	if query != "" {
		return "file:" + esc + "?" + query
	}
	return "file:" + esc
}
