package broker

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestConnLimitsValidate: the flags start from DefaultConnLimits, which
// validate; a bad limit is refused naming its flag; override addresses are
// counted in their plain form.
func TestConnLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string // named in the error; "" means valid
	}{
		{nil, ""},
		{[]string{"--max-preauth-request-bytes=7"}, "--max-preauth-request-bytes"},
		{[]string{"--auth-timeout=0"}, "--auth-timeout"},
		{[]string{"--queued-max-request-bytes=0"}, "--queued-max-request-bytes"},
		{[]string{"--connections-max-idle=-1s"}, "--connections-max-idle"},
		{[]string{"--max-connections-per-ip=0"}, "--max-connections-per-ip"},
		{[]string{"--max-connections=0"}, "--max-connections"},
		{[]string{"--max-connection-creation-rate=0"}, "--max-connection-creation-rate"},
		{[]string{"--max-connections-per-ip-overrides=db.local=5"}, "--max-connections-per-ip-overrides"},
		{[]string{"--max-connections-per-ip-overrides=10.0.0.1=-1"}, "--max-connections-per-ip-overrides"},
		{[]string{"--max-connections-per-ip-overrides=::ffff:10.0.0.1=0,10.0.0.2=5000"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var l ConnLimits
			fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
			l.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if tc.args == nil && !reflect.DeepEqual(l, DefaultConnLimits()) {
				t.Fatalf("flags start from %+v, want DefaultConnLimits %+v", l, DefaultConnLimits())
			}
			err := l.Validate()
			switch {
			case tc.flag == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.flag != "" && (err == nil || !strings.Contains(err.Error(), tc.flag)):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.flag)
			}
		})
	}
	l := DefaultConnLimits()
	l.PerIPOverrides = map[string]int{"::ffff:10.0.0.1": 0}
	if err := l.Validate(); err != nil || !maps.Equal(l.PerIPOverrides, map[string]int{"10.0.0.1": 0}) {
		t.Fatalf("overrides %v, err %v; want 10.0.0.1=0", l.PerIPOverrides, err)
	}
}
