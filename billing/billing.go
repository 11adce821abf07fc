// Package billing turns metered usage into money: a price book with
// effective dates, plans with included usage, rating into daily cost lines
// per cluster and metric, and monthly invoices per organisation in the
// organisation's time zone. It is pure computation; internal/store
// reads and writes what it computes, and billing/meter counts usage in
// brokers.
//
// # Units
//
// Usage is counted in base units and priced in pricing units:
//
//	metric      base unit          pricing unit          base units per pricing unit
//	ingress     byte               GB                    10^9
//	egress      byte               GB                    10^9
//	storage     byte-second        GB-month              10^9 x 730 x 3600
//	partitions  partition-second   partition-hour        3600
//	clusters    cluster-second     cluster-hour          3600
//
// A GB-month is 730 hours whatever the month's length, as cloud providers
// bill it. requests and connections are metered but not priced.
//
// # Arithmetic
//
// Everything is exact (math/big.Rat); nothing is a float. Money is integer
// nano-units of the plan's currency (Nanos, 10^-9). Each daily cost line's
// exact amount is rounded once, half away from zero, to nano-units; an
// invoice's subtotal is the exact sum of its month's cost lines, so an
// invoice always equals the sum of its rated usage. Only the invoice total
// is rounded to cents (half away from zero).
//
// # Included usage and price changes
//
// A plan's included usage is per organisation and month. It is consumed
// in time order (then by cluster id within the same 15-minute bucket), so
// early usage is free and the remainder is charged at the price effective
// when it was used. Prices take effect at 15-minute boundaries; usage is
// rated in 15-minute buckets, which never straddle a day in any time zone.
//
// Everything in this package is safe for concurrent use.
package billing

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"
)

// Metric names a kind of usage.
type Metric string

// The metrics. Priced ones come first.
const (
	Ingress     Metric = "ingress"
	Egress      Metric = "egress"
	Storage     Metric = "storage"
	Partitions  Metric = "partitions"
	Clusters    Metric = "clusters"
	Requests    Metric = "requests"
	Connections Metric = "connections"
)

// PricedMetrics are the metrics a price book prices, in invoice order.
var PricedMetrics = []Metric{Ingress, Egress, Storage, Partitions, Clusters}

// AllMetrics are every metered metric.
var AllMetrics = []Metric{Ingress, Egress, Storage, Partitions, Clusters, Requests, Connections}

// ErrUnknownMetric: a metric name this package does not know.
var ErrUnknownMetric = errors.New("billing: unknown metric")

// ParseMetric checks a metric name.
func ParseMetric(s string) (Metric, error) {
	for _, m := range AllMetrics {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnknownMetric, s)
}

// Priced reports whether the metric has a price.
func (m Metric) Priced() bool {
	for _, p := range PricedMetrics {
		if p == m {
			return true
		}
	}
	return false
}

// Unit is the pricing unit's name ("GB", "GB-month", ...); for metrics
// without a price it is the base unit.
func (m Metric) Unit() string {
	switch m {
	case Ingress, Egress:
		return "GB"
	case Storage:
		return "GB-month"
	case Partitions:
		return "partition-hour"
	case Clusters:
		return "cluster-hour"
	case Requests:
		return "request"
	case Connections:
		return "connection"
	}
	return ""
}

// gbMonthSeconds is the length of a billing month: 730 hours.
const gbMonthSeconds = 730 * 3600

// UnitSize is how many base units make one pricing unit.
func (m Metric) UnitSize() *big.Int {
	switch m {
	case Ingress, Egress:
		return big.NewInt(1e9)
	case Storage:
		return new(big.Int).Mul(big.NewInt(1e9), big.NewInt(gbMonthSeconds))
	case Partitions, Clusters:
		return big.NewInt(3600)
	}
	return big.NewInt(1)
}

// ToUnits converts a quantity in base units to pricing units, exactly.
func (m Metric) ToUnits(base *big.Rat) *big.Rat {
	return new(big.Rat).Quo(base, new(big.Rat).SetInt(m.UnitSize()))
}

// Nanos is an amount of money in nano-units (10^-9) of a currency.
type Nanos int64

// NanosPerCent is how many nano-units make a cent.
const NanosPerCent = 10_000_000

// Cents rounds n to whole cents, half away from zero.
func (n Nanos) Cents() int64 {
	return roundQuo(big.NewRat(int64(n), NanosPerCent))
}

// String formats n in currency units with nine decimals, e.g. "12.345000000".
func (n Nanos) String() string { return FormatDecimal(big.NewRat(int64(n), 1e9), 9) }

// FormatCents formats cents as a decimal amount, e.g. 1234 -> "12.34".
func FormatCents(c int64) string { return FormatDecimal(big.NewRat(c, 100), 2) }

// roundQuo rounds r to the nearest integer, half away from zero.
func roundQuo(r *big.Rat) int64 {
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Lsh(m, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

// RoundNanos rounds an exact amount in currency units to nano-units, half
// away from zero.
func RoundNanos(amount *big.Rat) Nanos {
	return Nanos(roundQuo(new(big.Rat).Mul(amount, big.NewRat(1e9, 1))))
}

// FormatDecimal formats r with exactly prec decimals, rounding half away
// from zero.
func FormatDecimal(r *big.Rat, prec int) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(prec)), nil)
	n := roundQuoBig(new(big.Rat).Mul(r, new(big.Rat).SetInt(scale)))
	neg := n.Sign() < 0
	s := new(big.Int).Abs(n).String()
	if prec > 0 {
		if len(s) <= prec {
			s = strings.Repeat("0", prec-len(s)+1) + s
		}
		s = s[:len(s)-prec] + "." + s[len(s)-prec:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func roundQuoBig(r *big.Rat) *big.Int {
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Lsh(m, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q
}

// ParseDecimal parses a plain decimal ("0.05", "12", "-3.5"), exactly.
func ParseDecimal(s string) (*big.Rat, error) {
	if s == "" || strings.ContainsAny(s, "eE/") {
		return nil, fmt.Errorf("billing: %q is not a decimal number", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("billing: %q is not a decimal number", s)
	}
	return r, nil
}

// ParseAmount parses a decimal amount of currency into nano-units; more
// than nine decimals is an error.
func ParseAmount(s string) (Nanos, error) {
	r, err := ParseDecimal(s)
	if err != nil {
		return 0, err
	}
	n := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() || !n.Num().IsInt64() {
		return 0, fmt.Errorf("billing: %q has more than nine decimals or is too large", s)
	}
	return Nanos(n.Num().Int64()), nil
}

// Price is one entry of a price book: UnitPrice per pricing unit of
// Metric, from EffectiveFrom until the next entry of the same metric.
type Price struct {
	Metric        Metric
	EffectiveFrom time.Time
	UnitPrice     *big.Rat
}

// Plan is a price book and the usage included every month.
type Plan struct {
	ID       string
	Currency string
	Prices   []Price
	// Included is per metric, in pricing units, per organisation and month.
	Included map[Metric]*big.Rat
}

// priceAt returns the unit price of m at t, or nil if none is effective.
func (p *Plan) priceAt(m Metric, t time.Time) *big.Rat {
	var best *Price
	for i := range p.Prices {
		pr := &p.Prices[i]
		if pr.Metric != m || pr.EffectiveFrom.After(t) {
			continue
		}
		if best == nil || pr.EffectiveFrom.After(best.EffectiveFrom) {
			best = pr
		}
	}
	if best == nil {
		return nil
	}
	return best.UnitPrice
}

// BucketSize is the granularity at which usage is rated.
const BucketSize = 15 * time.Minute

// Usage is a quantity in base units of one metric, used by one cluster in
// the bucket starting at Start.
type Usage struct {
	Cluster  string
	Metric   Metric
	Start    time.Time
	Quantity *big.Int
}

// Line is a daily cost line: what one cluster's use of one metric cost
// on one day (in the organisation's time zone) at one unit price.
type Line struct {
	Day       string // YYYY-MM-DD
	Cluster   string
	Metric    Metric
	UnitPrice *big.Rat
	// Quantity is the base units used; Billable what remained after the
	// plan's included usage.
	Quantity *big.Int
	Billable *big.Int
	Amount   Nanos
}

// Period is an organisation's billing month: [Start, End) in UTC, and
// Month the first day of the month in the time zone ("2026-03-01").
type Period struct {
	Month      string
	Start, End time.Time
}

// MonthOf returns the billing month containing t in loc.
func MonthOf(t time.Time, loc *time.Location) Period {
	lt := t.In(loc)
	start := time.Date(lt.Year(), lt.Month(), 1, 0, 0, 0, 0, loc)
	end := start.AddDate(0, 1, 0)
	return Period{Month: start.Format(time.DateOnly), Start: start.UTC(), End: end.UTC()}
}

// Rate rates usage (base units, bucketed by BucketSize) of one
// organisation in one billing month, in time zone loc, under plan. Usage
// of metrics without a price is ignored; usage with no effective price is
// an error (a plan must price every metric from before its first use).
// The lines come out ordered by day, cluster, metric and price.
func Rate(plan Plan, loc *time.Location, usage []Usage) ([]Line, error) {
	us := make([]Usage, 0, len(usage))
	for _, u := range usage {
		if u.Metric.Priced() && u.Quantity.Sign() > 0 {
			us = append(us, u)
		}
	}
	sort.SliceStable(us, func(i, j int) bool {
		if !us[i].Start.Equal(us[j].Start) {
			return us[i].Start.Before(us[j].Start)
		}
		if us[i].Cluster != us[j].Cluster {
			return us[i].Cluster < us[j].Cluster
		}
		return us[i].Metric < us[j].Metric
	})
	// What is left of each metric's included usage, in base units.
	left := map[Metric]*big.Rat{}
	for m, q := range plan.Included {
		left[m] = new(big.Rat).Mul(q, new(big.Rat).SetInt(m.UnitSize()))
	}
	type key struct {
		day, cluster string
		metric       Metric
		price        string
	}
	type acc struct {
		price              *big.Rat
		quantity, billable *big.Int
		exact              *big.Rat // billable x price / unit size
	}
	lines := map[key]*acc{}
	for _, u := range us {
		price := plan.priceAt(u.Metric, u.Start)
		if price == nil {
			return nil, fmt.Errorf("billing: plan %s has no %s price effective at %s", plan.ID, u.Metric, u.Start.UTC().Format(time.RFC3339))
		}
		q := new(big.Rat).SetInt(u.Quantity)
		billable := new(big.Rat).Set(q)
		if l := left[u.Metric]; l != nil && l.Sign() > 0 {
			free := q
			if l.Cmp(q) < 0 {
				free = l
			}
			billable.Sub(billable, free)
			l.Sub(l, free)
		}
		k := key{u.Start.In(loc).Format(time.DateOnly), u.Cluster, u.Metric, price.RatString()}
		a := lines[k]
		if a == nil {
			a = &acc{price: price, quantity: new(big.Int), billable: new(big.Int), exact: new(big.Rat)}
			lines[k] = a
		}
		a.quantity.Add(a.quantity, u.Quantity)
		// Base units are integers and included usage in base units may not
		// be; the billable quantity is kept exact for the amount and shown
		// rounded down.
		a.exact.Add(a.exact, new(big.Rat).Mul(u.Metric.ToUnits(billable), price))
		bq := new(big.Int).Quo(billable.Num(), billable.Denom())
		a.billable.Add(a.billable, bq)
	}
	out := make([]Line, 0, len(lines))
	for k, a := range lines {
		out = append(out, Line{Day: k.day, Cluster: k.cluster, Metric: k.metric, UnitPrice: a.price,
			Quantity: a.quantity, Billable: a.billable, Amount: RoundNanos(a.exact)})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Metric != b.Metric {
			return metricOrder(a.Metric) < metricOrder(b.Metric)
		}
		return a.UnitPrice.Cmp(b.UnitPrice) < 0
	})
	return out, nil
}

func metricOrder(m Metric) int {
	for i, x := range AllMetrics {
		if x == m {
			return i
		}
	}
	return len(AllMetrics)
}

// InvoiceLine is the month's charge for one cluster, metric and price.
type InvoiceLine struct {
	Cluster   string
	Metric    Metric
	UnitPrice *big.Rat
	Quantity  *big.Int
	Billable  *big.Int
	Amount    Nanos
}

// Adjustment is a credit (positive, reduces the invoice, never below zero)
// or a signed adjustment.
type Adjustment struct {
	Credit bool
	Amount Nanos
}

// Invoice is a month's total.
type Invoice struct {
	Lines       []InvoiceLine
	Subtotal    Nanos // exact sum of the cost lines
	Credits     Nanos // credits applied (at most the subtotal)
	Adjustments Nanos
	Total       Nanos // Subtotal - Credits + Adjustments
	TotalCents  int64 // Total rounded to cents
}

// Summarize sums a month's daily cost lines into invoice lines (per
// cluster, metric and price) and applies credits and adjustments.
func Summarize(lines []Line, adj []Adjustment) Invoice {
	type key struct {
		cluster string
		metric  Metric
		price   string
	}
	idx := map[key]int{}
	var inv Invoice
	for _, l := range lines {
		k := key{l.Cluster, l.Metric, l.UnitPrice.RatString()}
		i, ok := idx[k]
		if !ok {
			i = len(inv.Lines)
			idx[k] = i
			inv.Lines = append(inv.Lines, InvoiceLine{Cluster: l.Cluster, Metric: l.Metric, UnitPrice: l.UnitPrice,
				Quantity: new(big.Int), Billable: new(big.Int)})
		}
		il := &inv.Lines[i]
		il.Quantity.Add(il.Quantity, l.Quantity)
		il.Billable.Add(il.Billable, l.Billable)
		il.Amount += l.Amount
		inv.Subtotal += l.Amount
	}
	sort.Slice(inv.Lines, func(i, j int) bool {
		a, b := inv.Lines[i], inv.Lines[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Metric != b.Metric {
			return metricOrder(a.Metric) < metricOrder(b.Metric)
		}
		return a.UnitPrice.Cmp(b.UnitPrice) < 0
	})
	var credits Nanos
	for _, a := range adj {
		if a.Credit {
			credits += a.Amount
		} else {
			inv.Adjustments += a.Amount
		}
	}
	inv.Credits = min(credits, max(inv.Subtotal, 0))
	inv.Total = inv.Subtotal - inv.Credits + inv.Adjustments
	inv.TotalCents = inv.Total.Cents()
	return inv
}

// Estimate projects a month's charges from the month-to-date amount: the
// amount scaled by the month's length over the time elapsed. At or after
// the month's end the projection is the amount itself.
func Estimate(monthToDate Nanos, p Period, now time.Time) Nanos {
	if !now.Before(p.End) {
		return monthToDate
	}
	elapsed := now.Sub(p.Start)
	if elapsed <= 0 {
		return monthToDate
	}
	r := new(big.Rat).Mul(big.NewRat(int64(monthToDate), 1), big.NewRat(int64(p.End.Sub(p.Start)), int64(elapsed)))
	return Nanos(roundQuo(r))
}

// Rat returns n in currency units, exactly.
func (n Nanos) Rat() *big.Rat { return big.NewRat(int64(n), 1e9) }
