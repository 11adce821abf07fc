package api_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestSpecExamples: every operation of api/openapi.yaml shows an example
// of each of its request bodies and success responses, every problem
// response shows one, and every example is valid against the schema it
// illustrates, so the rendered reference at /docs never shows a body the
// server would refuse or could not send.
func TestSpecExamples(t *testing.T) {
	doc := loadSpec(t)
	var paths []string
	for p := range doc.Paths.Map() {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	checked := 0
	for _, path := range paths {
		for method, op := range doc.Paths.Value(path).Operations() {
			where := method + " " + path
			if rb := op.RequestBody; rb != nil && rb.Value != nil {
				checked += checkExamples(t, where+" request", rb.Value.Content)
			}
			for code, r := range op.Responses.Map() {
				if r.Value == nil {
					t.Errorf("%s %s: unresolved response", where, code)
					continue
				}
				success := strings.HasPrefix(code, "2")
				problem := r.Value.Content.Get("application/problem+json") != nil
				if !success && !problem {
					continue
				}
				checked += checkExamples(t, where+" "+code, r.Value.Content)
			}
		}
	}
	t.Logf("%d examples validated", checked)
	if checked < 100 {
		t.Errorf("only %d examples checked; the walk over the document is broken", checked)
	}
}

// checkExamples reports media types of content without an example and
// examples that their schema refuses; it returns how many it validated.
func checkExamples(t *testing.T, where string, content openapi3.Content) int {
	t.Helper()
	n := 0
	for mt, m := range content {
		var values []any
		if m.Example != nil {
			values = append(values, m.Example)
		}
		for name, ex := range m.Examples {
			if ex.Value == nil || ex.Value.Value == nil {
				t.Errorf("%s %s: example %s has no value", where, mt, name)
				continue
			}
			values = append(values, ex.Value.Value)
		}
		if len(values) == 0 {
			t.Errorf("%s %s: no example", where, mt)
			continue
		}
		if m.Schema == nil || m.Schema.Value == nil {
			t.Errorf("%s %s: no schema to check the example against", where, mt)
			continue
		}
		for _, v := range values {
			// The loader gives YAML's types; the server speaks JSON.
			b, err := json.Marshal(v)
			if err != nil {
				t.Errorf("%s %s: example is not JSON: %v", where, mt, err)
				continue
			}
			var j any
			if err := json.Unmarshal(b, &j); err != nil {
				t.Fatal(err)
			}
			if err := m.Schema.Value.VisitJSON(j, openapi3.EnableFormatValidation(), openapi3.MultiErrors()); err != nil {
				t.Errorf("%s %s: example does not match its schema: %v", where, mt, err)
			}
			n++
		}
	}
	return n
}
