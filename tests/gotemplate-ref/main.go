// Command gotemplate-ref runs the templating crate's differential corpus through Go's own
// text/template, the way ESO runs templates (missingkey=error, data as map[string]string),
// and prints one JSON line per case: {"name", "ok", "out" (base64)}.
//
// main.go alone uses only the standard library. Built together with sprig.go (in GOPATH mode
// against Debian's golang-github-masterminds-sprig-dev) it adds the Sprig functions ESO keeps.
//
// Usage: gotemplate-ref CORPUS_DIR
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

// extraFuncs is set by sprig.go when it is part of the build.
var extraFuncs template.FuncMap

type corpusCase struct {
	name, body, left, right string
}

func parseCases(path string) ([]corpusCase, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cases []corpusCase
	var cur *corpusCase
	var lines []string
	flush := func() {
		if cur != nil {
			cur.body = strings.Join(lines, "\n")
			cases = append(cases, *cur)
		}
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "=== ") {
			flush()
			fields := strings.Fields(line[4:])
			cur = &corpusCase{name: fields[0]}
			if len(fields) == 3 {
				cur.left, cur.right = fields[1], fields[2]
			}
			lines = nil
			continue
		}
		lines = append(lines, line)
	}
	// The file's final newline ends the last case, it is not part of it.
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	flush()
	return cases, nil
}

func run(c corpusCase, data map[string]string) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	t, err := template.New("corpus").Funcs(extraFuncs).Option("missingkey=error").Delims(c.left, c.right).Parse(c.body)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gotemplate-ref CORPUS_DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	raw, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var spec struct {
		Text   map[string]string `json:"text"`
		Base64 map[string]string `json:"base64"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	data := map[string]string{}
	for k, v := range spec.Text {
		data[k] = v
	}
	for k, v := range spec.Base64 {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		data[k] = string(b)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.tmpl"))
	sort.Strings(files)
	enc := json.NewEncoder(os.Stdout)
	for _, f := range files {
		cases, err := parseCases(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range cases {
			out, err := run(c, data)
			res := map[string]interface{}{"name": filepath.Base(f) + "/" + c.name, "ok": err == nil}
			if err == nil {
				res["out"] = base64.StdEncoding.EncodeToString(out)
			} else {
				res["error"] = err.Error()
			}
			if err := enc.Encode(res); err != nil {
				os.Exit(1)
			}
		}
	}
}
