package federation

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExprEval(t *testing.T) {
	claims := map[string]any{
		"sub":                       "system:serviceaccount:prod:orders",
		"aud":                       "eddy",
		"email":                     "ana@corp.example",
		"email_verified":            true,
		"groups":                    []any{"devs", "admins"},
		"https://acme.example/team": "payments",
		"mixed":                     []any{"a", 7.0},
		"exp":                       1.8e9,
	}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`claims.sub == "system:serviceaccount:prod:orders"`, true},
		{`claims.sub != "system:serviceaccount:prod:orders"`, false},
		{`"admins" in claims.groups`, true},
		{`"ops" in claims.groups`, false},
		{`claims.aud in ["eddy", "other"]`, true},
		{`claims.email.endsWith("@corp.example")`, true},
		{`claims.email.endsWith("@evil.example")`, false},
		{`claims.sub.startsWith('system:serviceaccount:prod:')`, true},
		{`claims.email_verified == true`, true},
		{`claims["https://acme.example/team"] == "payments"`, true},
		{`claims.sub == "x" && "admins" in claims.groups || claims.email.endsWith("@corp.example")`, true},
		{`claims.sub == "x" && ("admins" in claims.groups || claims.email.endsWith("@corp.example"))`, false},
		{`!(claims.aud != "eddy")`, true},
		{`!!(claims.aud == "eddy")`, true},
		{`"a\"b" == 'a"b'`, true},
		// Undecided tests fail closed, unless the other side of || or
		// && decides alone.
		{`claims.missing == "x"`, false},
		{`claims.missing != "x"`, false},
		{`!(claims.missing == "x")`, false},
		{`claims.missing == "x" || claims.aud == "eddy"`, true},
		{`claims.aud == "eddy" || claims.missing == "x"`, true},
		{`claims.missing == "x" && claims.aud == "nope"`, false},
		{`!(claims.missing == "x" && claims.aud == "nope")`, true},
		{`claims.missing == "x" && claims.aud == "eddy"`, false},
		{`claims.groups == "admins"`, false},  // a list is tested with in
		{`"a" in claims.mixed`, false},        // not a list of strings
		{`claims.exp == "1800000000"`, false}, // numbers are not strings
		{`claims.email_verified == "true"`, false},
		{`"eddy" in claims.aud`, false}, // aud is a string here
	} {
		e, err := ParseExpr(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if got := e.Eval(claims); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.expr, got, tc.want)
		}
	}
	if (Expr{}).Eval(claims) {
		t.Error("the zero Expr admitted a token")
	}
}

func TestParseExprErrors(t *testing.T) {
	for _, tc := range []struct {
		expr string
		pos  int
		msg  string
	}{
		{``, 1, "expected a string"},
		{`claims.sub`, 11, "expected ==, !=, in"},
		{`claims.sub == `, 15, "expected a string"},
		{`claims.sub = "x"`, 12, "unexpected character"},
		{`claims.sub == "x`, 15, "unterminated string"},
		{`claims.sub == "x" &&`, 21, "expected a string"},
		{`(claims.sub == "x"`, 19, `expected ")"`},
		{`claims.sub == "x")`, 18, "unexpected"},
		{`claims.sub in "x"`, 15, "expected a list"},
		{`claims.sub.contains("x")`, 12, "expected startsWith or endsWith"},
		{`claims.sub.startsWith(claims.aud)`, 23, "takes a string"},
		{`claims.sub == "\n"`, 16, "unknown escape"},
		{`claims..sub == "x"`, 8, "expected a claim name"},
		{`claims[sub] == "x"`, 8, "in quotes"},
		{`sub == "x"`, 1, "expected a string, true, false, a list or claims"},
		{`claims.sub in ["a", 1]`, 21, "unexpected character"},
		{`claims.sub in ["a" "b"]`, 20, `expected ","`},
		{strings.Repeat("(", MaxExprDepth+1) + `claims.sub == "x"` + strings.Repeat(")", MaxExprDepth+1), MaxExprDepth + 1, "nested deeper"},
		{strings.Repeat("!", MaxExprDepth+1) + `(claims.sub == "x")`, MaxExprDepth + 1, "nested deeper"},
		{strings.Repeat(`"a" == "a" || `, MaxExprTests) + `"a" == "a"`, 14*MaxExprTests + 1, "more than"},
		{`claims.sub == "` + strings.Repeat("x", MaxExprLen) + `"`, MaxExprLen + 1, "longer than"},
		// A lexical error is named once, wherever it stands.
		{`claims.sub == "x" @`, 19, "unexpected character '@'"},
		{`claims.sub == "x" && claims.sub ~ "y"`, 33, "unexpected character '~'"},
		{`claims.sub == "x" || é`, 22, "unexpected character 'é'"},
		// Literal operands that can never be decided.
		{`["a"] == claims.sub`, 1, "a list cannot be compared with =="},
		{`claims.groups != ["a"]`, 18, "a list cannot be compared with !="},
		{`"a" == true`, 1, "compares a string with a boolean"},
		{`true in claims.groups`, 1, "the left side of in must be a string or a claim, not a boolean"},
		{`["a"] in ["a"]`, 1, "not a list"},
		{`true.startsWith("t")`, 1, "apply to a string or a claim, not a boolean"},
	} {
		_, err := ParseExpr(tc.expr)
		var pe *ExprError
		if !errors.As(err, &pe) {
			t.Errorf("%.40s: error %v, want an *ExprError", tc.expr, err)
			continue
		}
		if pe.Pos != tc.pos || !strings.Contains(pe.Msg, tc.msg) || strings.Count(pe.Msg, "unexpected") > 1 {
			t.Errorf("%.40s: %v, want at character %d: …%s…", tc.expr, err, tc.pos, tc.msg)
		}
	}
	list := `claims.sub in [` + strings.Repeat(`"a", `, MaxListLen) + `"a"]`
	if _, err := ParseExpr(list); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("a list of %d strings: %v", MaxListLen+1, err)
	}
}

// FuzzParseExpr: no input panics the parser or its evaluation, inputs
// over the bounds are refused, and an accepted expression parses again
// from its String the same way.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		`claims.sub == "x" && "admins" in claims.groups || claims.email.endsWith("@corp.example")`,
		`!(claims["a b"] in ['x', "y"]) && claims.v == true`,
		`((claims.a.startsWith("p")))`, `claims.`, `"\`, `[`, `!!!!`,
	} {
		f.Add(s)
	}
	claims := map[string]any{"sub": "x", "groups": []any{"admins"}, "email": "a@corp.example", "v": true, "a": "p"}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			var pe *ExprError
			if !errors.As(err, &pe) || pe.Pos < 1 || pe.Pos > len(s)+1 && len(s) <= MaxExprLen {
				t.Fatalf("%q: error %v without a position in the input", s, err)
			}
			if strings.Contains(pe.Msg, "unexpected unexpected") || !utf8.ValidString(pe.Msg) && utf8.ValidString(s) {
				t.Fatalf("%q: garbled error %q", s, pe.Msg)
			}
			return
		}
		if len(s) > MaxExprLen {
			t.Fatalf("accepted %d bytes", len(s))
		}
		got := e.Eval(claims)
		again, err := ParseExpr(e.String())
		if err != nil || again.Eval(claims) != got {
			t.Fatalf("%q does not parse again the same: %v", s, err)
		}
	})
}
