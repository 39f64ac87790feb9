package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/weirproxy/weir/internal/testutil"
)

// weirBin is the weir command built once for the CLI tests.
var weirBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weir-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if weirBin, err = testutil.BuildWeir(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the weir command:", err)
		return 1
	}
	return m.Run()
}
