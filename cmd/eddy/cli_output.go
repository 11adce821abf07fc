package main

// How every CLI command prints (-o table|json|yaml). Structured output is
// the REST API's JSON, the wire types of api/client; YAML is that JSON
// converted, so both show the same field names and scripts may use either.

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

var outputFormats = []string{"table", "json", "yaml"}

func (f *apiFlags) checkOutput() error {
	if !slices.Contains(outputFormats, f.output) {
		return fmt.Errorf("--output must be one of %s, not %q", strings.Join(outputFormats, ", "), f.output)
	}
	return nil
}

// structured reports whether v itself is printed rather than a table.
func (f *apiFlags) structured() bool { return f.output == "json" || f.output == "yaml" }

// print writes v as JSON or YAML, or as a table of rows under header.
func (f *apiFlags) print(w io.Writer, v any, header []string, rows [][]string) error {
	if err := f.checkOutput(); err != nil {
		return err
	}
	switch f.output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// describe prints one object as key/value lines, or as JSON or YAML.
func (f *apiFlags) describe(w io.Writer, v any, fields [][2]string) error {
	if f.structured() {
		return f.print(w, v, nil, nil)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, kv := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}
