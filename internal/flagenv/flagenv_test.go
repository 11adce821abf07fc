package flagenv

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestApply(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	d := fs.Duration("flush-interval", time.Second, "")
	n := fs.Int("id", 1, "")
	t.Setenv("EDDY_FLUSH_INTERVAL", "5ms")
	t.Setenv("EDDY_ID", "7")
	if err := fs.Parse([]string{"--id=3"}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(fs, "EDDY"); err != nil {
		t.Fatal(err)
	}
	if *d != 5*time.Millisecond {
		t.Errorf("env should set an unset flag: got %v", *d)
	}
	if *n != 3 {
		t.Errorf("command line must win over env: got %d", *n)
	}
	t.Setenv("EDDY_FLUSH_INTERVAL", "soon")
	fs2 := pflag.NewFlagSet("y", pflag.ContinueOnError)
	fs2.Duration("flush-interval", time.Second, "")
	if err := Apply(fs2, "EDDY"); err == nil {
		t.Error("a bad env value must be an error naming the variable")
	}
}
