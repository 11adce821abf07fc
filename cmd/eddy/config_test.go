package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/api"
	billmeter "github.com/eddy-streams/eddy/billing/meter"
	"github.com/eddy-streams/eddy/control-plane/autoscale"
	"github.com/eddy-streams/eddy/control-plane/laghistory"
	"github.com/eddy-streams/eddy/control-plane/lease"
	"github.com/eddy-streams/eddy/control-plane/ledger"
	"github.com/eddy-streams/eddy/control-plane/placement"
	"github.com/eddy-streams/eddy/control-plane/scaler"
	"github.com/eddy-streams/eddy/data-plane/broker"
	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/data-plane/wal"
	"github.com/eddy-streams/eddy/internal/flagenv"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/tiered/cache"
	"github.com/eddy-streams/eddy/tiered/compact"
	"github.com/eddy-streams/eddy/tiered/gc"
	"github.com/eddy-streams/eddy/tiered/jobs"
	"github.com/eddy-streams/eddy/tiered/s3bucket"
	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite the settings tables in docs/operations.md")

// flagRegisterer is a configuration with flags.
type flagRegisterer interface{ RegisterFlags(*pflag.FlagSet) }

// flagsOf registers the flags of every config on one new flag set, which
// keeps them in registration order.
func flagsOf(configs ...flagRegisterer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("eddy", pflag.ContinueOnError)
	fs.SortFlags = false
	for _, c := range configs {
		c.RegisterFlags(fs)
	}
	return fs
}

// part is a component's configuration inside a command's, with the
// defaults its package declares.
type part struct {
	ptr any // points into the command's configuration
	def any // the package's defaults, a value of *ptr's type
}

// settings is a command's configuration: a fresh one's flags (in
// registration order) and its parts.
type settings struct {
	fs    *pflag.FlagSet
	parts []part
}

func brokerSettings() settings {
	var c brokerConfig
	return settings{flagsOf(&c), []part{
		{&c.Config, broker.DefaultConfig()},
		{&c.Leader, leader.DefaultConfig()},
		{&c.Leader.WAL, wal.DefaultOptions()},
		{&c.Group, group.DefaultConfig()},
		{&c.Share, share.DefaultConfig()},
		{&c.Metering, billmeter.DefaultConfig()},
		{&c.objstore.s3, s3bucket.Config{}}, // the zero value holds its defaults
		{&c.tiered.cache, cache.DefaultConfig()},
		{&c.tiered.jobs, jobs.DefaultConfig()},
		{&c.tiered.gc, gc.DefaultConfig()},
		{&c.tiered.compact, compact.DefaultConfig()},
	}}
}

func controlPlaneSettings() settings {
	var c controlPlaneConfig
	return settings{flagsOf(&c), []part{
		{&c.secrets, seal.Config{}}, // the zero value: no key until one is given
		{&c.placement, placement.DefaultConfig()},
		{&c.ledger, ledger.DefaultConfig()},
		{&c.lease, lease.DefaultConfig()},
		{&c.api, api.DefaultConfig()},
		{&c.autoscaleLoop, autoscale.DefaultLoopConfig()},
		{&c.kubernetes, scaler.DefaultKubernetesConfig()},
	}}
}

// noFlag lists the exported fields of the parts that deliberately have no
// flag of their own, with the reason.
var noFlag = map[string]string{
	"leader.Config.BrokerID":            "broker.Config.Validate copies --id",
	"meter.Config.BrokerID":             "broker.Config.Validate copies --id",
	"leader.Config.Remote":              "the read cache (--remote-cache-*), opened at start-up",
	"api.Config.Webhooks.AllowPrivate":  "controlPlaneConfig.Validate copies the ledger's policy (--webhook-*)",
	"api.Config.Webhooks.Allow":         "controlPlaneConfig.Validate copies the ledger's policy (--webhook-*)",
	"api.Config.Secrets":                "controlPlaneConfig.Validate hands in the key-encryption key (--secrets-key-file)",
	"ledger.Config.Secrets":             "controlPlaneConfig.Validate hands in the key-encryption key (--secrets-key-file)",
	"share.Config.MaxSessionPartitions": "broker.New copies --fetch-session-max-partitions: a share session is bounded as a fetch session",
}

// fields returns the exported leaf fields of the parts with their values,
// keyed by the part's type and the path to the field
// ("broker.Config.Listen", "ledger.Config.Webhooks.Allow"). A part
// inside another is listed under its own type only.
func (s settings) fields() map[string]any {
	parts := map[any]bool{}
	for _, p := range s.parts {
		parts[p.ptr] = true
	}
	out := map[string]any{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			switch {
			case !f.IsExported():
			case f.Type.Kind() != reflect.Struct:
				out[path+"."+f.Name] = fv.Interface()
			case !parts[fv.Addr().Interface()]:
				walk(fv, path+"."+f.Name)
			}
		}
	}
	for _, p := range s.parts {
		v := reflect.ValueOf(p.ptr).Elem()
		walk(v, v.Type().String())
	}
	return out
}

// probe returns a value for f that differs from its default.
func probe(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "duration":
		return "4321ms"
	case "int", "int32", "int64":
		return "4321"
	case "float64":
		return "0.4321"
	case "bool":
		return fmt.Sprint(f.DefValue != "true")
	case "stringSlice":
		return "PROBE"
	case "stringToInt":
		return "10.4.3.21=4321"
	case "cidrs":
		return "10.4.3.0/24"
	case "policy":
		if f.DefValue == "always" {
			return "never"
		}
		return "always"
	}
	return "probe-value"
}

// flagFields maps every flag of build's command to the fields of its
// parts that setting the flag changes.
func flagFields(t *testing.T, build func() settings) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	build().fs.VisitAll(func(f *pflag.Flag) {
		s := build()
		before := s.fields()
		if err := s.fs.Set(f.Name, probe(f)); err != nil {
			t.Fatalf("--%s=%s: %v", f.Name, probe(f), err)
		}
		for k, v := range s.fields() {
			if !reflect.DeepEqual(v, before[k]) {
				out[f.Name] = append(out[f.Name], k)
			}
		}
	})
	return out
}

// TestEverySettingHasAFlag: every exported field of the broker's parts
// (group.Config, wal.Options, leader.Config, ...) and of the control
// plane's is set by exactly one flag of its command, except those in
// noFlag, and no flag sets two fields.
func TestEverySettingHasAFlag(t *testing.T) {
	exempt := map[string]bool{}
	for name, build := range map[string]func() settings{"broker": brokerSettings, "control-plane": controlPlaneSettings} {
		t.Run(name, func(t *testing.T) {
			setBy := map[string][]string{}
			for fl, fields := range flagFields(t, build) {
				if len(fields) > 1 {
					t.Errorf("--%s sets %d fields: %v", fl, len(fields), fields)
				}
				for _, f := range fields {
					setBy[f] = append(setBy[f], "--"+fl)
				}
			}
			for f := range build().fields() {
				switch why, ok := noFlag[f]; {
				case ok && len(setBy[f]) > 0:
					t.Errorf("%s is listed without a flag (%s) but %v sets it", f, why, setBy[f])
				case ok:
					exempt[f] = true
				case len(setBy[f]) == 0:
					t.Errorf("%s has no flag: register one in its package's RegisterFlags, or list it in noFlag with the reason", f)
				case len(setBy[f]) > 1:
					t.Errorf("%s is set by several flags: %v", f, setBy[f])
				}
			}
		})
	}
	for f := range noFlag {
		if !exempt[f] {
			t.Errorf("noFlag lists %s, which no command's configuration has", f)
		}
	}
}

// TestFlagDefaultsAreThePackagesDefaults: registering a command's flags
// leaves each part equal to its package's DefaultConfig, so no default is
// declared a second time at the command.
func TestFlagDefaultsAreThePackagesDefaults(t *testing.T) {
	for name, build := range map[string]func() settings{"broker": brokerSettings, "control-plane": controlPlaneSettings} {
		for _, p := range build().parts {
			if got := reflect.ValueOf(p.ptr).Elem().Interface(); !reflect.DeepEqual(got, p.def) {
				t.Errorf("%s: %T after RegisterFlags\n  %+v\nwant the package's defaults\n  %+v", name, p.def, got, p.def)
			}
		}
	}
}

// TestBrokerHelpListsEveryPart: eddy broker --help shows every flag the
// group, leader and WAL configurations register.
func TestBrokerHelpListsEveryPart(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"broker", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	fs := flagsOf(new(group.Config), new(leader.Config)) // leader's has the WAL's
	n := 0
	fs.VisitAll(func(f *pflag.Flag) {
		n++
		if !strings.Contains(out.String(), "--"+f.Name+" ") {
			t.Errorf("eddy broker --help does not list --%s", f.Name)
		}
	})
	if n == 0 {
		t.Fatal("the group, leader and WAL configurations register no flags")
	}
}

// TestEnvReachesNestedConfig: EDDY_<FLAG> sets a part's field through the
// command's flags, and the binary applies it before running.
func TestEnvReachesNestedConfig(t *testing.T) {
	t.Setenv("EDDY_GROUP_OFFSETS_RETENTION", "36h")
	t.Setenv("EDDY_WAL_SYNC", "always")
	t.Setenv("EDDY_DATABASE_URL", "") // eddy broker stops at once without it

	var c brokerConfig
	fs := flagsOf(&c)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := flagenv.Apply(fs, "EDDY"); err != nil {
		t.Fatal(err)
	}
	if c.Group.OffsetsRetention.Hours() != 36 || c.Leader.WAL.Sync != wal.SyncAlways {
		t.Fatalf("group offsets retention %s, WAL sync %s; want 36h and always", c.Group.OffsetsRetention, c.Leader.WAL.Sync)
	}

	root := newRoot()
	root.SetArgs([]string{"broker"})
	root.SetOut(&bytes.Buffer{})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("eddy broker without a database: %v", err)
	}
	cmd, _, err := root.Find([]string{"broker"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("group-offsets-retention").Value.String(); got != "36h0m0s" {
		t.Fatalf("eddy broker's --group-offsets-retention is %s with EDDY_GROUP_OFFSETS_RETENTION=36h", got)
	}
}

// TestConfigValidateNamesTheFlag: a bad value stops the command with an
// error that names its flag, wherever the flag's part is.
func TestConfigValidateNamesTheFlag(t *testing.T) {
	dataDir := t.TempDir()
	key, err := devSecretsKey(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	notAKey := filepath.Join(dataDir, "not-a-key")
	if err := os.WriteFile(notAKey, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	validate := map[string]func(args []string) error{
		"broker": func(args []string) error {
			var c brokerConfig
			fs := flagsOf(&c)
			base := []string{"--database-url=postgres://x", "--data-dir=" + dataDir, "--anonymous-cluster=vc-dev"}
			if err := fs.Parse(append(base, args...)); err != nil {
				return err
			}
			return c.Validate()
		},
		"control-plane": func(args []string) error {
			var c controlPlaneConfig
			fs := flagsOf(&c)
			base := []string{"--database-url=postgres://x"}
			if !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "secrets") }) {
				base = append(base, "--secrets-key-file="+key)
			}
			if err := fs.Parse(append(base, args...)); err != nil {
				return err
			}
			return c.Validate()
		},
	}
	for _, tc := range []struct {
		cmd  string
		args []string
		flag string // named in the error; "" means valid
	}{
		{"broker", nil, ""},
		{"broker", []string{"--max-request-bytes=0"}, "--max-request-bytes"},
		{"broker", []string{"--metadata-interval=0"}, "--metadata-interval"},
		{"broker", []string{"--metadata-full-interval=100ms"}, "--metadata-full-interval"},
		{"broker", []string{"--heartbeat-interval=0"}, "--heartbeat-interval"},
		{"broker", []string{"--flush-interval=0"}, "--flush-interval"},
		{"broker", []string{"--cache-bytes=0"}, "--cache-bytes"},
		{"broker", []string{"--wal-segment-bytes=0"}, "--wal-segment-bytes"},
		{"broker", []string{"--group-offsets-retention=0"}, "--group-offsets-retention"},
		{"broker", []string{"--group-max-session-timeout=1s"}, "--group-max-session-timeout"},
		{"broker", []string{"--metering-sync=0"}, "--metering-sync"},
		{"broker", []string{"--remote-read-ahead=-1"}, "--remote-read-ahead"},
		{"broker", []string{"--jobs-poll=0"}, "--jobs-poll"},
		{"broker", []string{"--gc-batch=0"}, "--gc-batch"},
		{"broker", []string{"--compact-min-pieces=1"}, "--compact-min-pieces"},
		{"broker", []string{"--compact-pass-bytes=1"}, "--compact-pass-bytes"},
		{"broker", []string{"--compact-memory-bytes=1"}, "--compact-memory-bytes"},
		{"broker", []string{"--compact-memory-bytes=1048576"}, "--compact-row-bytes"},
		{"broker", []string{"--gc-interval=0"}, "--gc-interval"},
		{"broker", []string{"--objstore=s3"}, "--s3-bucket"},
		{"control-plane", nil, ""},
		{"control-plane", []string{"--insecure-plaintext-secrets"}, ""},
		{"control-plane", []string{"--secrets-key=" + strings.Repeat("ab", 32)}, ""},
		{"control-plane", []string{"--secrets-key-file="}, "--secrets-key-file"},
		{"control-plane", []string{"--secrets-key-file=" + notAKey}, "--secrets-key-file"},
		{"control-plane", []string{"--secrets-key-file=" + filepath.Join(dataDir, "missing")}, "--secrets-key-file"},
		{"control-plane", []string{"--secrets-key=hunter2"}, "--secrets-key"},
		{"control-plane", []string{"--placement-interval=0"}, "--placement-interval"},
		{"control-plane", []string{"--max-moves=0"}, "--max-moves"},
		{"control-plane", []string{"--lease-renew=0"}, "--lease-renew"},
		{"control-plane", []string{"--lease-ttl=5s"}, "--lease-ttl"},
		{"control-plane", []string{"--billing-webhook-attempts=0"}, "--billing-webhook-attempts"},
		{"control-plane", []string{"--webhook-allow-cidrs=10.0.0.0/99"}, "--webhook-allow-cidrs"},
		{"control-plane", []string{"--api-listen=127.0.0.1:0", "--token-ttl=0"}, "--token-ttl"},
		{"control-plane", []string{"--autoscale", "--autoscale-interval=0"}, "--autoscale-interval"},
		{"control-plane", []string{"--autoscale", "--k8s-kind=pods", "--k8s-name=b", "--k8s-namespace=n"}, "--k8s-kind"},
	} {
		t.Run(tc.cmd+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			err := validate[tc.cmd](tc.args)
			switch {
			case tc.flag == "" && err != nil:
				t.Fatalf("defaults rejected: %v", err)
			case tc.flag != "" && (err == nil || !strings.Contains(err.Error(), tc.flag)):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.flag)
			}
		})
	}
}

// TestDevControlPlaneStartsFromTheDefaults: eddy dev runs the control
// plane with eddy control-plane's defaults, which validate.
func TestDevControlPlaneStartsFromTheDefaults(t *testing.T) {
	var err error
	cp := defaultControlPlaneConfig()
	for _, c := range []struct{ have, want any }{
		{cp.placement, placement.DefaultConfig()},
		{cp.ledger, ledger.DefaultConfig()},
		{cp.api, api.DefaultConfig()},
		{cp.autoscaleLoop, autoscale.DefaultLoopConfig()},
		{cp.kubernetes, scaler.DefaultKubernetesConfig()},
	} {
		if !reflect.DeepEqual(c.have, c.want) {
			t.Errorf("eddy dev's %T is %+v, want %+v", c.want, c.have, c.want)
		}
	}
	cp.databaseURL = "postgres://x"
	if err := cp.Validate(); err == nil || !strings.Contains(err.Error(), "--secrets-key-file") {
		t.Fatalf("without a key-encryption key: %v, want an error naming --secrets-key-file", err)
	}
	// eddy dev adds the key it keeps under its data directory.
	if cp.secrets.KeyFile, err = devSecretsKey(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := cp.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if !cp.api.Secrets.Keyed() || cp.ledger.Secrets != cp.api.Secrets {
		t.Fatal("Validate does not hand the key-encryption key to the API and the ledger")
	}
}

// section is a heading of docs/operations.md and the flags under it: those
// of config, or (nil) every flag of the command no other section has.
type section struct {
	title  string
	config flagRegisterer
}

var operationsDoc = []struct {
	command  string
	build    func() settings
	sections []section
}{
	{"eddy broker", brokerSettings, []section{
		{"Broker (data-plane/broker)", nil},
		{"Partitions and write-ahead log (data-plane/leader, data-plane/wal)", new(leader.Config)},
		{"Consumer groups (data-plane/group)", new(group.Config)},
		{"Share groups (data-plane/share)", new(share.Config)},
		{"Usage metering (billing/meter)", new(billmeter.Config)},
		{"Object store (tiered/fsbucket, tiered/s3bucket)", new(objstoreConfig)},
		{"Tiered storage: read cache, jobs, collection, compaction (tiered/*)", new(tieredConfig)},
	}},
	{"eddy control-plane", controlPlaneSettings, []section{
		{"Control plane", nil},
		{"Secrets at rest (internal/seal)", new(seal.Config)},
		{"Placement and rebalancing (control-plane/placement)", new(placement.Config)},
		{"Autoscaler (control-plane/autoscale)", new(autoscale.LoopConfig)},
		{"Kubernetes scaler (control-plane/scaler)", new(scaler.KubernetesConfig)},
		{"REST API (api)", new(api.Config)},
		{"Billing ledger and its webhooks (control-plane/ledger, internal/egress)", new(ledger.Config)},
		{"Consumer-group lag history (control-plane/laghistory)", new(laghistory.Config)},
	}},
}

const (
	docPath  = "../../docs/operations.md"
	docBegin = "<!-- BEGIN SETTINGS: generated by go test ./cmd/eddy -run TestOperationsDocListsEveryFlag -update -->\n"
	docEnd   = "<!-- END SETTINGS -->\n"
)

// settingsTables renders every flag of eddy broker and eddy control-plane,
// by section, as Markdown tables.
func settingsTables(t *testing.T) string {
	var b strings.Builder
	cell := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace
	for _, cmd := range operationsDoc {
		all := cmd.build().fs
		sectionOf := map[string]string{}
		for _, sec := range cmd.sections[1:] {
			flagsOf(sec.config).VisitAll(func(f *pflag.Flag) {
				if all.Lookup(f.Name) == nil {
					t.Errorf("%s: section %q has --%s, which the command does not", cmd.command, sec.title, f.Name)
				}
				if other, ok := sectionOf[f.Name]; ok {
					t.Errorf("%s: --%s is in sections %q and %q", cmd.command, f.Name, other, sec.title)
				}
				sectionOf[f.Name] = sec.title
			})
		}
		all.VisitAll(func(f *pflag.Flag) {
			if _, ok := sectionOf[f.Name]; !ok {
				sectionOf[f.Name] = cmd.sections[0].title
			}
		})
		fmt.Fprintf(&b, "## `%s`\n", cmd.command)
		for _, sec := range cmd.sections {
			fmt.Fprintf(&b, "\n### %s\n\n| Flag | Environment | Type | Default | Meaning |\n| --- | --- | --- | --- | --- |\n", sec.title)
			all.VisitAll(func(f *pflag.Flag) {
				if sectionOf[f.Name] != sec.title {
					return
				}
				def := "`" + f.DefValue + "`"
				if f.DefValue == "" || f.DefValue == "[]" {
					def = "(none)"
				}
				fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s | %s |\n", f.Name, flagenv.Name("EDDY", f.Name), f.Value.Type(), cell(def), cell(f.Usage))
			})
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestOperationsDocListsEveryFlag: docs/operations.md tables every flag of
// eddy broker and eddy control-plane with its variable and default, as the
// flags say. Run with -update to regenerate the tables.
func TestOperationsDocListsEveryFlag(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(doc), docBegin)
	_, after, ok2 := strings.Cut(rest, docEnd)
	if !ok || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", docPath, docBegin, docEnd)
	}
	want := before + docBegin + "\n" + settingsTables(t) + docEnd + after
	if want == string(doc) {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the flags: run go test ./cmd/eddy -run TestOperationsDocListsEveryFlag -update", docPath)
}
