package chaos

import (
	"strings"
	"testing"
)

func TestCheckEOS(t *testing.T) {
	in := Log{Records: map[int32][]Record{0: {{0, "a"}, {1, "b"}, {2, "c"}}, 1: {{0, "x"}}}}
	out := func(vals ...string) Log {
		l := Log{Records: map[int32][]Record{}}
		for i, v := range vals {
			l.Records[0] = append(l.Records[0], Record{Offset: int64(i), Value: v})
		}
		return l
	}
	committed := map[int32]int64{0: 2, 1: 1}
	if vs := CheckEOS(in, out("0/0/a", "1/0/x", "0/1/b"), committed); len(vs) != 0 {
		t.Fatalf("a clean run: %v", vs)
	}
	for _, c := range []struct {
		name string
		out  Log
		want string
	}{
		{"duplicate", out("0/0/a", "1/0/x", "0/1/b", "0/0/a"), "copied twice"},
		{"missing", out("0/0/a", "1/0/x"), "not in the committed output"},
		{"above the commit", out("0/0/a", "1/0/x", "0/1/b", "0/2/c"), "at or above"},
		{"wrong value", out("0/0/a", "1/0/y", "0/1/b"), "the input log"},
		{"garbage", out("0/0/a", "1/0/x", "0/1/b", "nonsense"), "names no input"},
	} {
		vs := CheckEOS(in, c.out, committed)
		if len(vs) != 1 || !strings.Contains(vs[0].Detail, c.want) {
			t.Errorf("%s: %v, want one violation saying %q", c.name, vs, c.want)
		}
	}
}
