// The logger rule every backend follows: nil means slog.Default, and a
// backend's records are grouped under its type name.

package internal

import "log/slog"

// BackendLogger returns logger (slog.Default when nil) grouped under the
// backend's type name.
func BackendLogger(logger *slog.Logger, backend string) *slog.Logger {
	if logger == nil {
		logger = slog.Default()
	}
	return logger.WithGroup(backend)
}
