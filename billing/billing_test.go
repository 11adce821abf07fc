package billing

import (
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func rat(s string) *big.Rat {
	r, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return r
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s: %v", name, err)
	}
	return loc
}

const gb = 1_000_000_000

func use(cluster string, m Metric, start string, q int64) Usage {
	return Usage{Cluster: cluster, Metric: m, Start: at(start), Quantity: big.NewInt(q)}
}

// inPeriod keeps the usage whose bucket starts inside p, as the store's
// query does.
func inPeriod(us []Usage, p Period) []Usage {
	var out []Usage
	for _, u := range us {
		if !u.Start.Before(p.Start) && u.Start.Before(p.End) {
			out = append(out, u)
		}
	}
	return out
}

func standardPlan() Plan {
	return Plan{
		ID: "test", Currency: "USD",
		Prices: []Price{
			{Ingress, at("2020-01-01T00:00:00Z"), rat("0.05")},
			{Ingress, at("2026-03-16T00:00:00Z"), rat("0.08")}, // price change mid-month
			{Egress, at("2020-01-01T00:00:00Z"), rat("0.05")},
			{Storage, at("2020-01-01T00:00:00Z"), rat("0.10")},
			{Partitions, at("2020-01-01T00:00:00Z"), rat("0.0015")},
			{Clusters, at("2020-01-01T00:00:00Z"), rat("0.10")},
		},
		Included: map[Metric]*big.Rat{Ingress: rat("10")},
	}
}

// TestRatePriceChangeAndIncluded checks hand-computed amounts: included
// usage is consumed first, in time order, then usage is charged at the
// price effective when it happened.
func TestRatePriceChangeAndIncluded(t *testing.T) {
	us := []Usage{
		use("c1", Ingress, "2026-03-01T00:00:00Z", 6*gb),    // free (4 GB left)
		use("c1", Ingress, "2026-03-10T12:00:00Z", 6*gb),    // 4 free, 2 at 0.05 = 0.10
		use("c1", Ingress, "2026-03-20T00:00:00Z", 5*gb),    // 5 at 0.08 = 0.40
		use("c1", Requests, "2026-03-20T00:00:00Z", 1e6),    // not priced
		use("c2", Egress, "2026-03-20T00:15:00Z", gb/3),     // 0.0166666666.. -> 16666667 nanos
		use("c2", Partitions, "2026-03-20T00:00:00Z", 3600), // one partition-hour: 0.0015
	}
	lines, err := Rate(standardPlan(), time.UTC, us)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		day, cluster string
		m            Metric
		price        string
		billable     int64
		amount       Nanos
	}{
		{"2026-03-01", "c1", Ingress, "0.05", 0, 0},
		{"2026-03-10", "c1", Ingress, "0.05", 2 * gb, 100_000_000},
		{"2026-03-20", "c1", Ingress, "0.08", 5 * gb, 400_000_000},
		{"2026-03-20", "c2", Egress, "0.05", gb / 3, 16_666_667},
		{"2026-03-20", "c2", Partitions, "0.0015", 3600, 1_500_000},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d: %+v", len(lines), len(want), lines)
	}
	for i, w := range want {
		l := lines[i]
		if l.Day != w.day || l.Cluster != w.cluster || l.Metric != w.m || l.UnitPrice.Cmp(rat(w.price)) != 0 ||
			l.Billable.Int64() != w.billable || l.Amount != w.amount {
			t.Errorf("line %d = %s %s %s %s billable %s amount %d, want %+v", i, l.Day, l.Cluster, l.Metric,
				l.UnitPrice.FloatString(4), l.Billable, l.Amount, w)
		}
	}
	inv := Summarize(lines, []Adjustment{{Credit: true, Amount: 20_000_000}, {Amount: -1_000_000}})
	// 0.10 + 0.40 + 0.016666667 + 0.0015 = 0.518166667; - 0.02 credit - 0.001
	if inv.Subtotal != 518_166_667 || inv.Credits != 20_000_000 || inv.Total != 497_166_667 || inv.TotalCents != 50 {
		t.Errorf("invoice = %+v", inv)
	}
	// Credits never push an invoice below zero.
	if inv := Summarize(lines, []Adjustment{{Credit: true, Amount: 10 * 1e9}}); inv.Total != 0 || inv.Credits != inv.Subtotal {
		t.Errorf("over-credited invoice = %+v", inv)
	}
}

// TestRateRounding: storage is rated per daily line and rounded to
// nano-units once per line; the invoice is the exact sum of the lines.
func TestRateRounding(t *testing.T) {
	var us []Usage
	start := at("2026-03-01T00:00:00Z")
	for i := 0; i < 72*4; i++ { // 1 GB held for 72 hours, in 15-minute buckets
		us = append(us, Usage{Cluster: "c1", Metric: Storage, Start: start.Add(time.Duration(i) * BucketSize), Quantity: big.NewInt(gb * 900)})
	}
	lines, err := Rate(standardPlan(), time.UTC, us)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("lines = %+v", lines)
	}
	for _, l := range lines {
		// 24/730 GB-month x 0.10 = 0.00328767123287... -> 3287671 nanos
		if l.Amount != 3_287_671 {
			t.Errorf("%s: amount %d, want 3287671", l.Day, l.Amount)
		}
	}
	inv := Summarize(lines, nil)
	if inv.Subtotal != 3*3_287_671 || inv.TotalCents != 1 {
		t.Errorf("invoice = %+v", inv)
	}
}

// TestMonthBoundariesInTimeZones rates the same usage for organisations
// in different time zones: every bucket lands in exactly one month, the
// months' invoices add up to the whole, and buckets near midnight UTC
// land in the month and day of the organisation's zone.
func TestMonthBoundariesInTimeZones(t *testing.T) {
	var us []Usage
	// One GB of egress every 15 minutes from 2026-02-27 to 2026-04-03 UTC,
	// so every month boundary of every zone falls among them.
	for ts := at("2026-02-27T00:00:00Z"); ts.Before(at("2026-04-03T00:00:00Z")); ts = ts.Add(BucketSize) {
		us = append(us, Usage{Cluster: "c1", Metric: Egress, Start: ts, Quantity: big.NewInt(gb)})
	}
	plan := standardPlan()
	wholeLines, err := Rate(plan, time.UTC, us)
	if err != nil {
		t.Fatal(err)
	}
	whole := Summarize(wholeLines, nil)
	// Buckets of March per zone: March has 31 days = 2976 buckets, less the
	// hour lost to DST where it is observed.
	for _, tc := range []struct {
		zone          string
		start, end    string // March's period in UTC
		marchBuckets  int64
		firstDayLocal string
	}{
		{"UTC", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", 2976, "2026-03-01"},
		{"America/Los_Angeles", "2026-03-01T08:00:00Z", "2026-04-01T07:00:00Z", 2976 - 4, "2026-03-01"},
		{"Asia/Kolkata", "2026-02-28T18:30:00Z", "2026-03-31T18:30:00Z", 2976, "2026-03-01"},
		{"Pacific/Chatham", "2026-02-28T10:15:00Z", "2026-03-31T10:15:00Z", 2976, "2026-03-01"}, // +13:45 all month,
	} {
		t.Run(tc.zone, func(t *testing.T) {
			loc := zone(t, tc.zone)
			mar := MonthOf(at("2026-03-15T12:00:00Z"), loc)
			if mar.Month != "2026-03-01" || !mar.Start.Equal(at(tc.start)) || !mar.End.Equal(at(tc.end)) {
				t.Fatalf("March in %s = %+v", tc.zone, mar)
			}
			feb := MonthOf(mar.Start.Add(-time.Nanosecond), loc)
			apr := MonthOf(mar.End, loc)
			if !feb.End.Equal(mar.Start) || !apr.Start.Equal(mar.End) || apr.Month != "2026-04-01" {
				t.Fatalf("neighbours: %+v %+v", feb, apr)
			}
			var sum Nanos
			var marchQty int64
			for _, p := range []Period{feb, mar, apr} {
				lines, err := Rate(plan, loc, inPeriod(us, p))
				if err != nil {
					t.Fatal(err)
				}
				inv := Summarize(lines, nil)
				var lineSum Nanos
				for _, l := range lines {
					if !strings.HasPrefix(l.Day, p.Month[:7]) {
						t.Errorf("month %s has a line for %s", p.Month, l.Day)
					}
					lineSum += l.Amount
					if p == mar {
						marchQty += l.Quantity.Int64()
					}
				}
				if inv.Subtotal != lineSum || inv.TotalCents != lineSum.Cents() {
					t.Errorf("%s: invoice %+v, lines sum to %d", p.Month, inv, lineSum)
				}
				sum += inv.Subtotal
			}
			if marchQty != tc.marchBuckets*gb {
				t.Errorf("March holds %d GB, want %d", marchQty/gb, tc.marchBuckets)
			}
			// Each GB costs exactly 0.05, so no rounding: the months add up.
			if sum != whole.Subtotal {
				t.Errorf("months sum to %d, the whole rates to %d", sum, whole.Subtotal)
			}
			lines, _ := Rate(plan, loc, inPeriod(us, mar))
			if lines[0].Day != tc.firstDayLocal {
				t.Errorf("first day %s", lines[0].Day)
			}
		})
	}
}

// TestGolden rates a month with a price change, included usage, every
// metric and two time zones, and compares the cost lines and invoices with
// testdata/rate.golden (go test -run TestGolden -update rewrites it).
func TestGolden(t *testing.T) {
	var us []Usage
	start := at("2026-02-28T00:00:00Z")
	for i := 0; i < 36*24; i++ { // 36 days of hourly usage, in the hour's first bucket
		ts := start.Add(time.Duration(i) * time.Hour)
		us = append(us,
			Usage{"c1", Ingress, ts, big.NewInt(int64(i%7+1) * gb / 10)},
			Usage{"c1", Egress, ts, big.NewInt(int64(i%5+1) * gb / 4)},
			Usage{"c1", Storage, ts, big.NewInt(int64(i+1) * gb / 100 * 3600)},
			Usage{"c1", Partitions, ts, big.NewInt(12 * 3600)},
			Usage{"c1", Clusters, ts, big.NewInt(3600)},
			Usage{"c2", Ingress, ts, big.NewInt(333_333_333)},
			Usage{"c2", Clusters, ts, big.NewInt(3600)},
		)
	}
	var b strings.Builder
	for _, z := range []string{"UTC", "America/New_York"} {
		loc := zone(t, z)
		for _, month := range []string{"2026-02-15T00:00:00Z", "2026-03-15T00:00:00Z", "2026-04-01T12:00:00Z"} {
			p := MonthOf(at(month), loc)
			lines, err := Rate(standardPlan(), loc, inPeriod(us, p))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "# %s %s [%s, %s)\n", z, p.Month, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339))
			var sum Nanos
			for _, l := range lines {
				fmt.Fprintf(&b, "%s %s %-10s price=%s qty=%s billable=%s amount=%s\n", l.Day, l.Cluster, l.Metric,
					l.UnitPrice.FloatString(4), l.Quantity, l.Billable, l.Amount)
				sum += l.Amount
			}
			inv := Summarize(lines, nil)
			for _, l := range inv.Lines {
				fmt.Fprintf(&b, "  invoice %s %-10s price=%s units=%s amount=%s\n", l.Cluster, l.Metric,
					l.UnitPrice.FloatString(4), FormatDecimal(l.Metric.ToUnits(new(big.Rat).SetInt(l.Quantity)), 6), l.Amount)
			}
			fmt.Fprintf(&b, "  subtotal=%s total=%s\n", inv.Subtotal, FormatCents(inv.TotalCents))
			if inv.Subtotal != sum || inv.TotalCents != sum.Cents() {
				t.Errorf("%s %s: invoice %d (%d cents) != lines %d", z, p.Month, inv.Subtotal, inv.TotalCents, sum)
			}
		}
	}
	path := filepath.Join("testdata", "rate.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("rating differs from %s (run with -update after checking the change):\n%s", path, firstDiff(got, string(want)))
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, a, b)
		}
	}
	return ""
}

func TestRateNoPrice(t *testing.T) {
	_, err := Rate(Plan{ID: "empty"}, time.UTC, []Usage{use("c", Ingress, "2026-01-01T00:00:00Z", 1)})
	if err == nil {
		t.Fatal("rated usage without a price")
	}
}

func TestDecimals(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Nanos
		ok   bool
	}{
		{"12.34", 12_340_000_000, true}, {"0.000000001", 1, true}, {"-5", -5e9, true},
		{"0.0000000001", 0, false}, {"1e3", 0, false}, {"abc", 0, false}, {"", 0, false}, {"1/3", 0, false},
	} {
		got, err := ParseAmount(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAmount(%q) = %d, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		n     Nanos
		cents int64
		str   string
	}{
		{4_999_999, 0, "0.004999999"}, {5_000_000, 1, "0.005000000"}, {-5_000_000, -1, "-0.005000000"}, {1_234_567_890, 123, "1.234567890"},
	} {
		if c := tc.n.Cents(); c != tc.cents {
			t.Errorf("%d.Cents() = %d, want %d", tc.n, c, tc.cents)
		}
		if s := tc.n.String(); s != tc.str {
			t.Errorf("%d.String() = %s, want %s", tc.n, s, tc.str)
		}
	}
	if s := FormatCents(-5); s != "-0.05" {
		t.Errorf("FormatCents(-5) = %s", s)
	}
	p := MonthOf(at("2026-03-11T00:00:00Z"), time.UTC)
	if e := Estimate(1_000, p, at("2026-03-11T00:00:00Z")); e != 3_100 {
		t.Errorf("Estimate after 10 of 31 days = %d, want 3100", e)
	}
}
