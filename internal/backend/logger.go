// A backend's logger, by the rule in internal.BackendLogger.

package backend

import (
	"log/slog"
	"sync"

	"github.com/benbjohnson/litestream/internal"
)

// Logger holds a backend's logger; safe for concurrent use. The zero
// value logs to slog.Default grouped under the backend's name, so a client
// made as a struct literal logs too.
type Logger struct {
	mu     sync.Mutex
	logger *slog.Logger
}

// Set replaces the logger; nil means slog.Default.
func (l *Logger) Set(name Name, logger *slog.Logger) {
	logger = internal.BackendLogger(logger, string(name))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logger = logger
}

// Get returns the logger.
func (l *Logger) Get(name Name) *slog.Logger {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logger == nil {
		l.logger = slog.Default().WithGroup(string(name))
	}
	return l.logger
}
