// The test binary's entry point.
package litestream_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets tests re-run this binary as a separate process that uses the
// library, selected by LITESTREAM_TEST_CHILD.
func TestMain(m *testing.M) {
	switch os.Getenv("LITESTREAM_TEST_CHILD") {
	case "":
		os.Exit(m.Run())
	case "reopen":
		if err := reopenChild(os.Getenv("LITESTREAM_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "crash-writer":
		if err := crashWriter(os.Getenv("LITESTREAM_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "follow-reader":
		if err := followReader(os.Getenv("LITESTREAM_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "follow-checker", "follower", "follow-holder":
		run := map[string]func(string) error{"follow-checker": followChecker, "follower": followerChild, "follow-holder": followHolder}
		if err := run[os.Getenv("LITESTREAM_TEST_CHILD")](os.Getenv("LITESTREAM_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "commit":
		if err := commitChild(os.Getenv("LITESTREAM_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown child", os.Getenv("LITESTREAM_TEST_CHILD"))
		os.Exit(2)
	}
}
