//go:build !linux

// Placing a restored database outside Linux: a hard link, which fails
// rather than replace an existing file.

package litestream

// renameNoReplace renames oldpath to newpath unless newpath exists; see
// linkNoReplace.
func renameNoReplace(oldpath, newpath string) error { return linkNoReplace(oldpath, newpath) }
