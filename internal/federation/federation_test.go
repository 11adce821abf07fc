package federation

import (
	"strings"
	"testing"
)

func TestMatches(t *testing.T) {
	filter := map[string][]string{"sub": {"a", "b"}, "groups": {"payments"}}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   bool
	}{
		{"both", map[string]any{"sub": "a", "groups": []any{"devs", "payments"}}, true},
		{"other subject", map[string]any{"sub": "c", "groups": []any{"payments"}}, false},
		{"not in the group", map[string]any{"sub": "b", "groups": []any{"devs"}}, false},
		{"claim missing", map[string]any{"sub": "a"}, false},
		{"claim of another type", map[string]any{"sub": "a", "groups": 7.0}, false},
		{"string claim for a list filter", map[string]any{"sub": "a", "groups": "payments"}, true},
	} {
		if got := Matches(filter, tc.claims); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
	if Matches(nil, map[string]any{"sub": "a"}) {
		t.Error("an empty filter matched")
	}
}

func TestCheckFilter(t *testing.T) {
	if err := CheckFilter(map[string][]string{"sub": {"x"}}); err != nil {
		t.Fatal(err)
	}
	many := map[string][]string{}
	for i := range MaxFilterClaims + 1 {
		many[strings.Repeat("c", i+1)] = []string{"v"}
	}
	for name, f := range map[string]map[string][]string{
		"empty": {}, "no values": {"sub": nil}, "empty claim name": {"": {"x"}},
		"too many claims": many, "long value": {"sub": {strings.Repeat("v", 1025)}},
	} {
		if CheckFilter(f) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAdmits(t *testing.T) {
	claims := map[string]any{"sub": "a", "groups": []any{"payments"}}
	filter := map[string][]string{"sub": {"a"}}
	for _, tc := range []struct {
		name   string
		filter map[string][]string
		expr   string
		want   bool
	}{
		{"filter only", filter, "", true},
		{"expression only", nil, `"payments" in claims.groups`, true},
		{"both pass", filter, `claims.sub == "a"`, true},
		{"the expression refuses", filter, `claims.sub == "b"`, false},
		{"the filter refuses", map[string][]string{"sub": {"b"}}, `claims.sub == "a"`, false},
		{"neither", nil, "", false},
		{"an expression that does not parse", nil, `claims.sub ==`, false},
	} {
		if got := Admits(tc.filter, tc.expr, claims); got != tc.want {
			t.Errorf("%s: Admits = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckPool(t *testing.T) {
	for _, tc := range []struct {
		filter     map[string][]string
		expr       string
		wantField  string
		wantSubstr string
	}{
		{map[string][]string{"sub": {"a"}}, "", "", ""},
		{nil, `claims.sub == "a"`, "", ""},
		{nil, "", "filter", "filter_expression"},
		{map[string][]string{}, `claims.sub == "a"`, "filter", "at least one claim"},
		{nil, `claims.sub = "a"`, "filter_expression", "at character 12"},
	} {
		field, err := CheckPool(tc.filter, tc.expr)
		if field != tc.wantField || (tc.wantSubstr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantSubstr) {
			t.Errorf("CheckPool(%v, %q) = %q, %v; want %q, …%s…", tc.filter, tc.expr, field, err, tc.wantField, tc.wantSubstr)
		}
	}
}
