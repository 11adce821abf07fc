package federation

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// A filter expression decides, from a token's claims, whether an identity
// pool admits it: a small CEL-like language, bounded so that a tenant's
// expression costs the broker a known, small amount of work per login.
//
//	expr    = or
//	or      = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | "(" expr ")" | test
//	test    = value ( ("==" | "!=") value | "in" value | "." ("startsWith" | "endsWith") "(" string ")" )
//	value   = string | "true" | "false" | claim | "[" [ string { "," string } ] "]"
//	claim   = "claims" ( "." identifier | "[" string "]" )
//	string  = '"' … '"' | "'" … "'"   (escapes \\ \" \')
//
// For example:
//
//	claims.sub == "repo:acme/orders:ref:refs/heads/main"
//	"admins" in claims.groups && claims.email.endsWith("@corp.example")
//	claims["https://acme.example/team"] in ["payments", "risk"] || !(claims.aud != "eddy")
//
// A claim is a string, a boolean or a list of strings; `x in l` holds
// when the list l holds the string x. As in CEL, a test that cannot be
// decided (a claim missing, or of another type than the test needs) is an
// error, which `||` and `&&` absorb when their other side decides alone
// (true || error is true, false && error is false); an expression whose
// result is an error does not admit the token. So a pool fails closed:
// `!(claims.sub == "x")` does not admit a token without sub.
// A test that no token could decide — a list literal compared with == or
// !=, a string literal compared with a boolean one, a boolean or a list
// on the left of in, startsWith or endsWith — is a syntax error rather
// than a pool that silently admits no one.

// Bounds of an expression: its length in bytes, the nesting of
// parentheses and negations, its tests, and the strings of a list.
const (
	MaxExprLen   = 4096
	MaxExprDepth = 32
	MaxExprTests = 128
	MaxListLen   = 64
)

// ExprError is a syntax error at a position of the expression.
type ExprError struct {
	Pos int // 1-based byte offset
	Msg string
}

func (e *ExprError) Error() string { return fmt.Sprintf("at character %d: %s", e.Pos, e.Msg) }

// Expr is a parsed filter expression. Its zero value admits nothing.
type Expr struct {
	root node
	src  string
}

// String is the expression as written.
func (e Expr) String() string { return e.src }

// ParseExpr parses a filter expression, or says where and why it is not
// one (an *ExprError).
func ParseExpr(src string) (Expr, error) {
	if len(src) > MaxExprLen {
		return Expr{}, &ExprError{Pos: MaxExprLen + 1, Msg: fmt.Sprintf("the expression is longer than %d bytes", MaxExprLen)}
	}
	p := &parser{src: src}
	p.next()
	root, err := p.or(0)
	if err != nil {
		return Expr{}, err
	}
	if p.tok.kind != tEOF {
		return Expr{}, p.errorf("unexpected %s; expected && or || or the end", p.tok)
	}
	return Expr{root: root, src: src}, nil
}

// Eval reports whether claims pass the expression.
func (e Expr) Eval(claims map[string]any) bool {
	if e.root == nil {
		return false
	}
	ok, err := e.root.eval(claims)
	return err == nil && ok
}

// errUndecided is a test that cannot be decided for these claims.
var errUndecided = errors.New("undecided")

type node interface {
	eval(claims map[string]any) (bool, error)
}

type orNode struct{ l, r node }
type andNode struct{ l, r node }
type notNode struct{ x node }

func (n orNode) eval(c map[string]any) (bool, error) {
	l, lerr := n.l.eval(c)
	if lerr == nil && l {
		return true, nil
	}
	r, rerr := n.r.eval(c)
	if rerr == nil && r {
		return true, nil
	}
	return false, errors.Join(lerr, rerr)
}

func (n andNode) eval(c map[string]any) (bool, error) {
	l, lerr := n.l.eval(c)
	if lerr == nil && !l {
		return false, nil
	}
	r, rerr := n.r.eval(c)
	if rerr == nil && !r {
		return false, nil
	}
	if err := errors.Join(lerr, rerr); err != nil {
		return false, err
	}
	return true, nil
}

func (n notNode) eval(c map[string]any) (bool, error) {
	x, err := n.x.eval(c)
	return !x, err
}

// value is a literal or a claim reference.
type value struct {
	claim   string // the claim's name, for a reference
	isClaim bool
	lit     any // string, bool or []string
}

// get is the value: a string, a bool or a []string, or errUndecided.
func (v value) get(c map[string]any) (any, error) {
	if !v.isClaim {
		return v.lit, nil
	}
	switch x := c[v.claim].(type) {
	case string, bool:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errUndecided
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return x, nil
	}
	return nil, errUndecided
}

// kind is the kind of a literal ("string", "boolean" or "list"), or ""
// for a claim, whose kind is known only from a token.
func (v value) kind() string {
	switch v.lit.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case []string:
		return "list"
	}
	return ""
}

type testNode struct {
	op   string // ==, !=, in, startsWith, endsWith
	l, r value
}

func (n testNode) eval(c map[string]any) (bool, error) {
	l, err := n.l.get(c)
	if err != nil {
		return false, err
	}
	r, err := n.r.get(c)
	if err != nil {
		return false, err
	}
	switch n.op {
	case "==", "!=":
		var eq bool
		switch lv := l.(type) {
		case string:
			rv, ok := r.(string)
			if !ok {
				return false, errUndecided
			}
			eq = lv == rv
		case bool:
			rv, ok := r.(bool)
			if !ok {
				return false, errUndecided
			}
			eq = lv == rv
		default: // lists are compared with in
			return false, errUndecided
		}
		return eq == (n.op == "=="), nil
	case "in":
		s, ok := l.(string)
		list, ok2 := r.([]string)
		if !ok || !ok2 {
			return false, errUndecided
		}
		return slices.Contains(list, s), nil
	default:
		s, ok := l.(string)
		arg, _ := r.(string)
		if !ok {
			return false, errUndecided
		}
		if n.op == "startsWith" {
			return strings.HasPrefix(s, arg), nil
		}
		return strings.HasSuffix(s, arg), nil
	}
}

// Lexer.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tOp // == != && || ! ( ) [ ] . ,
	tBad
)

type token struct {
	kind tokKind
	text string // the identifier, the operator, or the string's value
	pos  int    // 0-based
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return fmt.Sprintf("string %q", t.text)
	case tBad:
		return t.text
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	src   string
	off   int
	tok   token
	tests int
}

// errorf is a syntax error at the current token; at a token the lexer
// could not read, that is the error (rather than "unexpected" it).
func (p *parser) errorf(format string, args ...any) error {
	if p.tok.kind == tBad {
		return &ExprError{Pos: p.tok.pos + 1, Msg: p.tok.text}
	}
	return &ExprError{Pos: p.tok.pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func isIdentByte(b byte, first bool) bool {
	return b == '_' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || !first && '0' <= b && b <= '9'
}

// next reads the next token into p.tok; a lexical error is a tBad token
// whose text says what is wrong.
func (p *parser) next() {
	for p.off < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.off]) >= 0 {
		p.off++
	}
	start := p.off
	if p.off >= len(p.src) {
		p.tok = token{kind: tEOF, pos: start}
		return
	}
	c := p.src[p.off]
	switch {
	case isIdentByte(c, true):
		for p.off < len(p.src) && isIdentByte(p.src[p.off], false) {
			p.off++
		}
		p.tok = token{kind: tIdent, text: p.src[start:p.off], pos: start}
	case c == '"' || c == '\'':
		p.off++
		var b strings.Builder
		for {
			if p.off >= len(p.src) {
				p.tok = token{kind: tBad, text: "unterminated string", pos: start}
				return
			}
			ch := p.src[p.off]
			if ch == c {
				p.off++
				break
			}
			if ch == '\\' {
				if p.off+1 >= len(p.src) || strings.IndexByte(`\"'`, p.src[p.off+1]) < 0 {
					p.tok = token{kind: tBad, text: `unknown escape (only \\, \" and \' are)`, pos: p.off}
					return
				}
				p.off++
				ch = p.src[p.off]
			}
			b.WriteByte(ch)
			p.off++
		}
		p.tok = token{kind: tString, text: b.String(), pos: start}
	default:
		for _, op := range []string{"==", "!=", "&&", "||", "!", "(", ")", "[", "]", ".", ","} {
			if strings.HasPrefix(p.src[p.off:], op) {
				p.off += len(op)
				p.tok = token{kind: tOp, text: op, pos: start}
				return
			}
		}
		r, _ := utf8.DecodeRuneInString(p.src[p.off:])
		p.tok = token{kind: tBad, text: fmt.Sprintf("unexpected character %q", r), pos: start}
	}
}

func (p *parser) is(op string) bool { return p.tok.kind == tOp && p.tok.text == op }

func (p *parser) expect(op string) error {
	if !p.is(op) {
		return p.errorf("expected %q, found %s", op, p.tok)
	}
	p.next()
	return nil
}

func (p *parser) or(depth int) (node, error) {
	l, err := p.and(depth)
	for err == nil && p.is("||") {
		p.next()
		var r node
		if r, err = p.and(depth); err == nil {
			l = orNode{l, r}
		}
	}
	return l, err
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.unary(depth)
	for err == nil && p.is("&&") {
		p.next()
		var r node
		if r, err = p.unary(depth); err == nil {
			l = andNode{l, r}
		}
	}
	return l, err
}

func (p *parser) unary(depth int) (node, error) {
	if depth >= MaxExprDepth {
		return nil, p.errorf("nested deeper than %d", MaxExprDepth)
	}
	switch {
	case p.is("!"):
		p.next()
		x, err := p.unary(depth + 1)
		return notNode{x}, err
	case p.is("("):
		p.next()
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		return x, p.expect(")")
	}
	return p.test()
}

func (p *parser) test() (node, error) {
	if p.tests++; p.tests > MaxExprTests {
		return nil, p.errorf("more than %d tests", MaxExprTests)
	}
	lpos := p.tok.pos
	l, err := p.value()
	if err != nil {
		return nil, err
	}
	// A test whose literal operands can never be decided is refused
	// here, rather than stored to admit no one.
	at := func(pos int, format string, args ...any) error {
		return &ExprError{Pos: pos + 1, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case p.is("==") || p.is("!="):
		op := p.tok.text
		p.next()
		rpos := p.tok.pos
		r, err := p.value()
		switch {
		case err != nil:
		case l.kind() == "list":
			err = at(lpos, "a list cannot be compared with %s; test membership with in", op)
		case r.kind() == "list":
			err = at(rpos, "a list cannot be compared with %s; test membership with in", op)
		case l.kind() != "" && r.kind() != "" && l.kind() != r.kind():
			err = at(lpos, "compares a %s with a %s, which is never decided", l.kind(), r.kind())
		}
		return testNode{op: op, l: l, r: r}, err
	case p.tok.kind == tIdent && p.tok.text == "in":
		if k := l.kind(); k == "boolean" || k == "list" {
			return nil, at(lpos, "the left side of in must be a string or a claim, not a %s", k)
		}
		p.next()
		if _, isList := p.peekList(); !isList {
			return nil, p.errorf("expected a list ([…] or a claim) after in, found %s", p.tok)
		}
		r, err := p.value()
		if err == nil && !r.isClaim {
			if _, ok := r.lit.([]string); !ok {
				err = p.errorf("the right side of in must be a list")
			}
		}
		return testNode{op: "in", l: l, r: r}, err
	case p.is("."):
		if k := l.kind(); k == "boolean" || k == "list" {
			return nil, at(lpos, "startsWith and endsWith apply to a string or a claim, not a %s", k)
		}
		p.next()
		if p.tok.kind != tIdent || p.tok.text != "startsWith" && p.tok.text != "endsWith" {
			return nil, p.errorf("expected startsWith or endsWith, found %s", p.tok)
		}
		op := p.tok.text
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		if p.tok.kind != tString {
			return nil, p.errorf("%s takes a string, found %s", op, p.tok)
		}
		arg := p.tok.text
		p.next()
		return testNode{op: op, l: l, r: value{lit: arg}}, p.expect(")")
	}
	return nil, p.errorf("expected ==, !=, in, .startsWith or .endsWith after a value, found %s", p.tok)
}

// peekList reports whether the token starts a list or a claim.
func (p *parser) peekList() (token, bool) {
	return p.tok, p.is("[") || p.tok.kind == tIdent && p.tok.text == "claims"
}

func (p *parser) value() (value, error) {
	t := p.tok
	switch {
	case t.kind == tString:
		p.next()
		return value{lit: t.text}, nil
	case t.kind == tIdent && (t.text == "true" || t.text == "false"):
		p.next()
		return value{lit: t.text == "true"}, nil
	case t.kind == tIdent && t.text == "claims":
		p.next()
		switch {
		case p.is("."):
			p.next()
			if p.tok.kind != tIdent {
				return value{}, p.errorf("expected a claim name after claims., found %s", p.tok)
			}
			name := p.tok.text
			p.next()
			return value{claim: name, isClaim: true}, nil
		case p.is("["):
			p.next()
			if p.tok.kind != tString {
				return value{}, p.errorf(`expected a claim name in quotes after claims[, found %s`, p.tok)
			}
			name := p.tok.text
			p.next()
			return value{claim: name, isClaim: true}, p.expect("]")
		}
		return value{}, p.errorf("expected . or [ after claims, found %s", p.tok)
	case p.is("["):
		p.next()
		list := []string{}
		for !p.is("]") {
			if len(list) > 0 {
				if err := p.expect(","); err != nil {
					return value{}, err
				}
			}
			if p.tok.kind != tString {
				return value{}, p.errorf("a list holds strings, found %s", p.tok)
			}
			if len(list) == MaxListLen {
				return value{}, p.errorf("a list holds at most %d strings", MaxListLen)
			}
			list = append(list, p.tok.text)
			p.next()
		}
		p.next()
		return value{lit: list}, nil
	case t.kind == tBad:
		return value{}, p.errorf("%s", t.text)
	}
	return value{}, p.errorf("expected a string, true, false, a list or claims.<name>, found %s", t)
}
