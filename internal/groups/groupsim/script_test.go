package groupsim

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the scenarios in testdata/: every behavioural scenario
// of spec §8 that concerns the daemons (sNN_*.txt) and the failure cases
// of issue 4 item 9 (fN_*.txt), on simulated clusters. The properties of
// checker.go are checked after every step; a violation shows up as an
// error in the output. Regenerate with -rewrite after a deliberate change,
// and read the diff.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		sc := NewScript()
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
