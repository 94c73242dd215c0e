package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/percore/percore/health"
	"github.com/percore/percore/promtext"
	"github.com/percore/percore/promtext/process"
)

var updateDocs = flag.Bool("update-docs", false,
	"rewrite the generated tables of docs/reference/flags.md from the options and commands (go generate ./cmd/percore)")

// repoRoot is the repository, seen from this package's directory, where
// go test runs.
const repoRoot = "../.."

// The files the documentation tests read.
const (
	readmeFile   = repoRoot + "/README.md"
	flagsDoc     = repoRoot + "/docs/reference/flags.md"
	sizingDoc    = repoRoot + "/docs/sizing.md"
	adminAPIDoc  = repoRoot + "/docs/reference/admin-api.md"
	metricsDoc   = repoRoot + "/docs/reference/metrics.md"
	metricsCode  = "metrics.go"
	readmeLength = 250 // lines: a newcomer reads it in five minutes; the rest goes in docs/
)

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mdText escapes s for a cell of a Markdown table, where a pipe ends the
// cell and *, _, <, [ and ` would start markup.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\|*_<>[]`", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode is s as inline code in a table cell: only a pipe needs escaping.
func mdCode(s string) string {
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// flagsTable is the Markdown table of the options: flag, variable, default
// and meaning, with a link to the guide that says more.
func flagsTable(opts []option) string {
	var b strings.Builder
	b.WriteString("| flag | env | default | meaning |\n|---|---|---|---|\n")
	for _, o := range opts {
		meaning := mdText(o.usage)
		if o.doc != "" {
			meaning += " ([more](../" + o.doc + "))"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCode(o.synopsis()), mdCode(o.envName()), mdText(o.def), meaning)
	}
	return b.String()
}

// commandsTable is the Markdown table of the subcommands.
func commandsTable(cmds []subcommand) string {
	var b strings.Builder
	b.WriteString("| command | what it does |\n|---|---|\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "| %s | %s |\n", mdCode(c.Usage()), mdText(c.Summary()))
	}
	return b.String()
}

// generated returns doc with the block between "<!-- BEGIN name" and
// "<!-- END name -->" replaced by body, and the block as it was.
func generated(doc, name, body string) (string, string, error) {
	begin := strings.Index(doc, "<!-- BEGIN "+name)
	if begin < 0 {
		return "", "", fmt.Errorf("no <!-- BEGIN %s ... --> line", name)
	}
	start := strings.IndexByte(doc[begin:], '\n')
	end := strings.Index(doc, "<!-- END "+name+" -->")
	if start < 0 || end < begin+start {
		return "", "", fmt.Errorf("no <!-- END %s --> line after its BEGIN", name)
	}
	start += begin + 1
	return doc[:start] + body + doc[end:], doc[start:end], nil
}

// tableCells splits a Markdown table row into its cells; an escaped pipe
// stays in its cell.
func tableCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(strings.TrimSuffix(row, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row):
			cell.WriteByte(row[i])
			cell.WriteByte(row[i+1])
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// flagRows maps each flag name in a flags table to its cells.
func flagRows(table string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := tableCells(line)
		name := strings.TrimPrefix(strings.Trim(cells[0], "`"), "--")
		if i := strings.IndexAny(name, " `"); i >= 0 {
			name = name[:i]
		}
		rows[name] = cells
	}
	return rows
}

// TestDocsFlagsTable keeps docs/reference/flags.md in step with the
// options percore has: every option has its row, with its variable, its
// default and its meaning as --help prints them, and no row names a flag
// percore lacks. The tables of flags and of commands are made from the
// code; with -update-docs (go generate ./cmd/percore) the test writes them.
func TestDocsFlagsTable(t *testing.T) {
	doc := readDoc(t, flagsDoc)
	want, table, err := generated(doc, "FLAGS", flagsTable(options()))
	if err != nil {
		t.Fatalf("%s: %v", flagsDoc, err)
	}
	want, _, err = generated(want, "COMMANDS", commandsTable(subcommands()))
	if err != nil {
		t.Fatalf("%s: %v", flagsDoc, err)
	}
	if *updateDocs {
		if want != doc {
			if err := os.WriteFile(flagsDoc, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote %s", flagsDoc)
		}
		return
	}
	rows := flagRows(table)
	known := map[string]bool{}
	for _, o := range options() {
		known[o.name] = true
		cells, ok := rows[o.name]
		if !ok {
			t.Errorf("%s lacks --%s", flagsDoc, o.name)
			continue
		}
		if len(cells) != 4 {
			t.Errorf("%s: the row of --%s has %d cells, want 4", flagsDoc, o.name, len(cells))
			continue
		}
		if cells[1] != mdCode(o.envName()) {
			t.Errorf("%s: --%s is set by %s, not %s", flagsDoc, o.name, o.envName(), cells[1])
		}
		if cells[2] != mdText(o.def) {
			t.Errorf("%s: --%s defaults to %q, not %q", flagsDoc, o.name, o.def, cells[2])
		}
	}
	for name := range rows {
		if !known[name] {
			t.Errorf("%s has a row for --%s, which percore does not have", flagsDoc, name)
		}
	}
	if want != doc {
		t.Errorf("%s differs from what the options and commands make (first difference: %s); run go generate ./cmd/percore",
			flagsDoc, firstDifference(doc, want))
	}
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gl, wl)
		}
	}
	return "none"
}

// TestDocsSizingTable checks every row of the sizing table in
// docs/sizing.md against what "percore plan" prints for that machine.
func TestDocsSizingTable(t *testing.T) {
	doc := readDoc(t, sizingDoc)
	// | 512 MiB, 2 CPU | 2 | 147 MiB | 227 MiB | 2 × 213 MiB |
	row := regexp.MustCompile(`(?m)^\| (\d+) (MiB|GiB), (\d+) CPU \| (\d+)[^|]* \| (\d+) MiB \| (\d+) MiB \| (\d+) × (\d+) MiB \|$`)
	rows := row.FindAllStringSubmatch(doc, -1)
	if len(rows) < 5 {
		t.Fatalf("found %d rows of the sizing table in %s", len(rows), sizingDoc)
	}
	plan := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"plan"}, args...), []string{"PATH=/usr/bin"}, &out, &errOut); code != 0 {
			t.Fatalf("plan %q: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	for _, r := range rows {
		memory := r[1] + strings.TrimSuffix(r[2], "iB")
		t.Run(memory+"/"+r[3], func(t *testing.T) {
			out := plan("--cpus", r[3], "--memory", memory)
			for _, want := range []string{"workers:  " + r[4] + " (", "heap:     " + r[5] + "MiB", "budget:   " + r[6] + "MiB"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s row %q: plan lacks %q:\n%s", sizingDoc, r[0], want, out)
				}
			}
			out = plan("--cpus", r[3], "--memory", memory, "--swap", "512M", "--include-swap")
			for _, want := range []string{"workers:  " + r[7] + " (", "heap:     " + r[8] + "MiB"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s row %q with swap: plan lacks %q:\n%s", sizingDoc, r[0], want, out)
				}
			}
		})
	}
}

// TestReadmeQuickStart checks that the README stays short, that its quick
// start's two commands name files that exist, and that it links every
// page of docs/.
func TestReadmeQuickStart(t *testing.T) {
	readme := readDoc(t, readmeFile)
	if n := strings.Count(readme, "\n"); n > readmeLength {
		t.Errorf("README.md has %d lines, more than %d: move the details into docs/", n, readmeLength)
	}
	for cmd, file := range map[string]string{
		"go run ./cmd/percore -- node examples/node-hello/server.js": "examples/node-hello/server.js",
		"./scripts/test": "scripts/test",
	} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("README.md's quick start lacks %q", cmd)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, file)); err != nil {
			t.Errorf("README.md's quick start runs %s: %v", file, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(repoRoot, "scripts/test")); err == nil && fi.Mode()&0o111 == 0 {
		t.Error("scripts/test is not executable")
	}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") {
			return err
		}
		rel, err := filepath.Rel(repoRoot, path)
		if err != nil {
			return err
		}
		if !strings.Contains(readme, "]("+filepath.ToSlash(rel)+")") {
			t.Errorf("README.md does not link %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// markdownFiles lists the repository's Markdown files, leaving out
// hidden directories (.git, .tools), installed packages and test data.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != repoRoot && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata" || name == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	fence    = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan = regexp.MustCompile("`[^`\n]*`")
	mdLink   = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	linkText = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// prose returns the lines of a Markdown file with those of fenced code
// blocks blanked, so that line i+1 of the file is prose(doc)[i].
func prose(doc string) []string {
	lines := strings.Split(doc, "\n")
	inFence := false
	for i, line := range lines {
		if fence.MatchString(line) {
			inFence = !inFence
			lines[i] = ""
		} else if inFence {
			lines[i] = ""
		}
	}
	return lines
}

// anchors returns the anchors GitHub makes for the headings of doc:
// lower case, letters, digits, '-' and '_' kept, spaces as '-', the rest
// dropped, and "-1", "-2" after repeats.
func anchors(doc string) map[string]bool {
	set := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose(doc) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		text := linkText.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			set[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			set[slug] = true
		}
		seen[slug]++
	}
	return set
}

// TestDocsLinks checks every relative link of the repository's Markdown
// files (README.md, CONTRIBUTING.md, docs/, the examples): the file it
// names exists, and a #anchor into a Markdown file names one of its
// headings.
func TestDocsLinks(t *testing.T) {
	files := markdownFiles(t)
	for _, want := range []string{"README.md", "CONTRIBUTING.md", "docs/reference/flags.md"} {
		if !slices.Contains(files, filepath.Join(repoRoot, want)) {
			t.Errorf("%s is missing", want)
		}
	}
	headings := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := headings[path]; ok {
			return a
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		headings[path] = anchors(string(b))
		return headings[path]
	}
	links := 0
	for _, file := range files {
		doc := readDoc(t, file)
		rel, _ := filepath.Rel(repoRoot, file)
		for i, line := range prose(doc) {
			for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				path, anchor, _ := strings.Cut(target, "#")
				dest := file
				if path != "" {
					dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s:%d: link %q: %v", rel, i+1, target, err)
					continue
				}
				if anchor != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[anchor] {
					t.Errorf("%s:%d: link %q: %s has no heading with the anchor #%s", rel, i+1, target, dest, anchor)
				}
			}
		}
	}
	if links < 50 {
		t.Errorf("found only %d relative links in %d Markdown files: is the link pattern still right?", links, len(files))
	}
}

// TestDocsStatusFields checks that docs/reference/admin-api.md names every
// field of /status, as `plan.heap_mb` or `workers[].last_exit.stop.how`.
func TestDocsStatusFields(t *testing.T) {
	doc := readDoc(t, adminAPIDoc)
	var missing []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := prefix + name
			if !strings.Contains(doc, "`"+path+"`") {
				missing = append(missing, path)
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				path += "[]"
				ft = ft.Elem()
			}
			walk(path+".", ft)
		}
	}
	walk("", reflect.TypeOf(health.Status{}))
	if len(missing) > 0 {
		t.Errorf("%s does not name these fields of /status: %s", adminAPIDoc, strings.Join(missing, ", "))
	}
}

// TestDocsListEveryMetric checks that docs/reference/metrics.md names
// every metric percore writes: its own, found in metrics.go, and its
// process metrics, as process.Add writes them.
func TestDocsListEveryMetric(t *testing.T) {
	doc := readDoc(t, metricsDoc)
	code := readDoc(t, metricsCode)
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.(?:Gauge|Counter|Histogram)\("(percore_[a-z0-9_]+)"`).FindAllStringSubmatch(code, -1) {
		names[m[1]] = true
	}
	if len(names) < 15 {
		t.Fatalf("found %d metrics in %s: is the pattern still right?", len(names), metricsCode)
	}
	var s promtext.Set
	_ = process.Add(&s, "percore") // what it cannot read is left out; the names it wrote are enough
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+)`).FindAllStringSubmatch(b.String(), -1) {
		names[m[1]] = true
	}
	for name := range names {
		if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, "`"+name+"{") {
			t.Errorf("%s does not name %s", metricsDoc, name)
		}
	}
}
