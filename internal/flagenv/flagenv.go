// Package flagenv lets every flag be set from the environment: flag
// --flush-interval reads EDDY_FLUSH_INTERVAL when not given on the command
// line. Command-line values always win.
package flagenv

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Name returns the environment variable for a flag.
func Name(prefix, flag string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Apply sets every flag of fs not set on the command line from
// PREFIX_FLAG_NAME, if present.
func Apply(fs *pflag.FlagSet, prefix string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(Name(prefix, f.Name)); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", Name(prefix, f.Name), serr)
			}
		}
	})
	return err
}
