package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples: `eddy X --help` shows how to use X, for
// every command eddy defines (cobra's own help and completion, and
// hidden internal commands, aside).
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot()
	root.InitDefaultCompletionCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.Example == "" {
				t.Errorf("%q has no Example", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(root)
}
