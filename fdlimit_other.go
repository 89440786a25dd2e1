//go:build !unix

// fdlimit_other.go: descriptor limits are not explained on this OS.

package litestream

func explainDescriptorLimit(err error) error { return err }
