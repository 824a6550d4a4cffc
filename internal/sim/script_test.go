package sim

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the scenario scripts in testdata/ and compares every
// command's output with the golden text. Regenerate with -rewrite after a
// deliberate change, and read the diff.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		sc := &Script{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var args []string
			for _, a := range d.CmdArgs {
				args = append(args, a.String())
			}
			out, err := sc.Run(d.Cmd, args)
			if err != nil {
				return out + "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}
