// The README's Go code must be code that runs: each of its Go blocks is
// checked to appear, line for line, in example*_test.go (whose Example
// functions go test runs) or in a program under examples/.
package litestream_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestREADME_GoBlocks(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	sources, err := filepath.Glob("example*_test.go") // example_test.go and one file per feature
	if err != nil {
		t.Fatal(err)
	}
	programs, err := filepath.Glob(filepath.Join("examples", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	sources = append(sources, programs...)
	var code [][]string
	for _, name := range sources {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		code = append(code, codeLines(string(b)))
	}

	blocks := goBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go code blocks")
	}
	for i, block := range blocks {
		want := codeLines(block)
		found := false
		for _, lines := range code {
			if containsRun(lines, want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README Go block %d is not in %s; copy it from there:\n%s", i+1, strings.Join(sources, ", "), block)
		}
	}
}

// goBlocks returns the bodies of the ```go fences in markdown.
func goBlocks(markdown string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(markdown, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```go":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// codeLines returns the non-blank lines of src without their indentation,
// which differs between a function body and a README block.
func codeLines(src string) []string {
	var lines []string
	for _, line := range strings.Split(src, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// containsRun reports whether want appears in lines as a contiguous run.
func containsRun(lines, want []string) bool {
	for i := 0; i+len(want) <= len(lines); i++ {
		match := true
		for j := range want {
			if lines[i+j] != want[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
