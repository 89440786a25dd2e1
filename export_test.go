package litestream

// SetCrashPoint replaces the hook called at named steps of syncs and
// checkpoints, for crash tests in package litestream_test.
func SetCrashPoint(fn func(name string)) { crashPoint = fn }
