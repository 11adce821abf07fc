package autoscale

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current decisions")

// trace is a load trace: testdata/NAME.json.
type trace struct {
	Description string   `json:"description"`
	Config      Config   `json:"config"`
	State       State    `json:"state"`
	Samples     []Sample `json:"samples"`
}

// replay decides after every sample, applying each decision at once, and
// returns the decisions worth reading: every scale-out and scale-in, and
// the first hold of each kind of reason (numbers aside).
func replay(tr trace) []Decision {
	var out []Decision
	st := tr.State
	digits := regexp.MustCompile(`[-+]?[0-9][0-9.]*[a-zµ]*`)
	lastKind := ""
	for i, s := range tr.Samples {
		d := Decide(tr.Config, st, tr.Samples[:i+1], s.At)
		kind := d.Action + " " + digits.ReplaceAllString(d.Reason, "#")
		if d.Action != Hold || kind != lastKind {
			out = append(out, d)
		}
		lastKind = kind
		st = st.Apply(d)
	}
	return out
}

// TestDecideGolden replays every trace in testdata and compares the
// decisions with NAME.golden.json (go test -update rewrites them).
func TestDecideGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var tr trace
			if err := json.Unmarshal(b, &tr); err != nil {
				t.Fatal(err)
			}
			if err := tr.Config.Validate(); err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(replay(tr), "", "  ")
			got = append(got, '\n')
			golden := strings.TrimSuffix(f, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decisions differ from %s (go test -update rewrites it after review):\n%s", golden, got)
			}
		})
	}
	if n == 0 {
		t.Fatal("no traces in testdata")
	}
}

// The properties each trace exists for, checked apart from the golden
// files so a careless -update cannot bless a regression.
func TestDecideProperties(t *testing.T) {
	load := func(name string) []Decision {
		b, err := os.ReadFile("testdata/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var tr trace
		if err := json.Unmarshal(b, &tr); err != nil {
			t.Fatal(err)
		}
		return replay(tr)
	}
	final := func(ds []Decision) int { return ds[len(ds)-1].To }
	actions := func(ds []Decision, a string) []Decision {
		var out []Decision
		for _, d := range ds {
			if d.Action == a {
				out = append(out, d)
			}
		}
		return out
	}

	t.Run("step scales out and back in", func(t *testing.T) {
		ds := load("step")
		outs, ins := actions(ds, ScaleOut), actions(ds, ScaleIn)
		if len(outs) == 0 || len(ins) == 0 {
			t.Fatalf("step: %d scale-outs, %d scale-ins", len(outs), len(ins))
		}
		peak := 0
		for _, d := range outs {
			peak = max(peak, d.To)
		}
		// Two brokers' worth of demand: 3 brokers (0.66) is within the band.
		if peak < 3 || final(ds) != 1 {
			t.Fatalf("step: peak %d brokers (want >= 3 for 2 brokers' worth at 0.6 +- 0.1), final %d (want 1)", peak, final(ds))
		}
	})
	t.Run("noise does not flap", func(t *testing.T) {
		ds := load("noisy")
		if n := len(actions(ds, ScaleOut)) + len(actions(ds, ScaleIn)); n > 1 {
			t.Fatalf("noisy: %d scaling actions, want at most 1", n)
		}
	})
	t.Run("trend scales out before the threshold", func(t *testing.T) {
		ds := load("ramp")
		outs := actions(ds, ScaleOut)
		if len(outs) == 0 || !strings.Contains(outs[0].Reason, "trend") || outs[0].Utilisation > 0.7 {
			t.Fatalf("ramp: first scale-out %+v; want one driven by the trend while utilisation is still <= 0.7", outs)
		}
	})
	t.Run("season scales out before the daily peak", func(t *testing.T) {
		ds := load("daily")
		for _, d := range actions(ds, ScaleOut) {
			h := d.At.Hour()
			day := d.At.YearDay() - time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC).YearDay()
			if day >= 1 && h >= 8 && h < 9 && strings.Contains(d.Reason, "ago load went") {
				return // scaled out ahead of 09:00 on a day with a previous one to learn from
			}
		}
		t.Fatalf("daily: no seasonal scale-out between 08:00 and 09:00 after the first day: %+v", actions(ds, ScaleOut))
	})
	t.Run("clamps", func(t *testing.T) {
		ds := load("cpu-clamped")
		if ds[0].Action != ScaleOut || ds[0].To != 2 {
			t.Fatalf("first decision %+v, want scale-out to the minimum of 2", ds[0])
		}
		for _, d := range ds {
			if d.To > 6 || d.To < 2 {
				t.Fatalf("decision outside [2, 6]: %+v", d)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []func(*Config){
		func(c *Config) { c.Target = 0 },
		func(c *Config) { c.Band = c.Target },
		func(c *Config) { c.MinBrokers = 0 },
		func(c *Config) { c.MaxBrokers = c.MinBrokers - 1 },
		func(c *Config) { c.Capacity = Capacity{} },
	} {
		cfg := DefaultConfig()
		c(&cfg)
		if cfg.Validate() == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}
