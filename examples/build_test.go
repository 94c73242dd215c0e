package examples_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// binaryPath is where the percore image holds percore, and where app images
// copy it from.
const binaryPath = "/usr/local/bin/percore"

// copyInstruction is a COPY's --from and its source and destination paths.
type copyInstruction struct {
	From    string
	Sources []string
	Dest    string
}

func parseCopy(in instruction) copyInstruction {
	var c copyInstruction
	f := strings.Fields(in.Args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		if v, ok := strings.CutPrefix(f[0], "--from="); ok {
			c.From = v
		}
		f = f[1:]
	}
	if len(f) >= 2 {
		c.Sources, c.Dest = f[:len(f)-1], f[len(f)-1]
	}
	return c
}

// execForm reads an instruction's JSON (exec) form, e.g. ENTRYPOINT ["a", "b"].
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(in.Args), &argv); err != nil {
		t.Errorf("line %d: %s %s is not in exec form: %v", in.Line, in.Cmd, in.Args, err)
	}
	return argv
}

// TestDockerfileBuild checks that the Dockerfile builds a static, stripped,
// -trimpath percore with a stamped version, and that its final image is
// scratch (or distroless static) holding only the binary at binaryPath.
// TestMain builds the binary the other tests run with this same line.
func TestDockerfileBuild(t *testing.T) {
	df, err := parseDockerfile(filepath.Join(repoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	gb, err := df.findGoBuild()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := gb.envValue("CGO_ENABLED"); v != "0" {
		t.Errorf("line %d: go build runs with CGO_ENABLED=%q, want 0 (a static binary)", gb.Line, v)
	}
	if !slices.Contains(gb.Args, "-trimpath") {
		t.Errorf("line %d: go build lacks -trimpath", gb.Line)
	}
	ldflags, _ := gb.flagValue("-ldflags")
	lf := strings.Fields(ldflags)
	i := slices.Index(lf, "-X")
	if !slices.Contains(lf, "-s") || !slices.Contains(lf, "-w") || i < 0 || i+1 >= len(lf) || lf[i+1] != "main.version=${VERSION}" {
		t.Errorf(`line %d: -ldflags %q, want "-s -w -X main.version=${VERSION}"`, gb.Line, ldflags)
	}
	if !gb.Stage.hasArg("VERSION") {
		t.Errorf("the build stage declares no ARG VERSION")
	}
	if last := gb.Args[len(gb.Args)-1]; last != "./cmd/percore" {
		t.Errorf("line %d: go build builds %s, want ./cmd/percore", gb.Line, last)
	}

	final := df.final()
	if final.From != "scratch" && !strings.HasPrefix(final.From, "gcr.io/distroless/static") {
		t.Errorf("the final stage is FROM %s, want scratch or gcr.io/distroless/static", final.From)
	}
	if runs := final.find("RUN"); len(runs) > 0 {
		t.Errorf("line %d: the final stage runs commands; it should only hold the binary", runs[0].Line)
	}
	copies := final.find("COPY")
	if len(copies) != 1 {
		t.Fatalf("the final stage has %d COPY instructions, want 1 (the binary)", len(copies))
	}
	c := parseCopy(copies[0])
	if c.From != gb.Stage.Name || !slices.Equal(c.Sources, []string{gb.Output}) || c.Dest != binaryPath {
		t.Errorf("line %d: COPY %+v, want --from=%s %s %s", copies[0].Line, c, gb.Stage.Name, gb.Output, binaryPath)
	}
	for _, in := range final.find("ENTRYPOINT") {
		if argv := execForm(t, in); len(argv) == 0 || argv[0] != binaryPath {
			t.Errorf("line %d: ENTRYPOINT %v, want %s first", in.Line, argv, binaryPath)
		}
	}
}

// TestStaticBinary checks the binary TestMain built with the Dockerfile's
// line: an ELF with no interpreter and no dynamic section (static), no
// symbol table or DWARF (-s -w), no path of this machine (-trimpath), and
// the version from the build argument.
func TestStaticBinary(t *testing.T) {
	out, err := exec.Command(percoreBin, "version").Output()
	if err != nil {
		t.Fatalf("percore version: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), "percore "+testVersion; got != want {
		t.Errorf("percore version printed %q, want %q", got, want)
	}
	data, err := os.ReadFile(percoreBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("percore built as the Dockerfile builds it: %d bytes", len(data))
	if bytes.Contains(data, []byte(repoRoot()+string(filepath.Separator))) {
		t.Errorf("the binary holds the path %s: -trimpath is missing", repoRoot())
	}
	if runtime.GOOS != "linux" {
		t.Skipf("the image is Linux; this %s binary is not ELF", runtime.GOOS)
	}
	f, err := elf.Open(percoreBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %s: the binary is dynamically linked", p.Type)
		}
	}
	for _, name := range []string{".interp", ".dynamic", ".symtab", ".debug_info", ".zdebug_info"} {
		if f.Section(name) != nil {
			t.Errorf("the binary has a %s section", name)
		}
	}
}

// TestAppDockerfile checks examples/docker/Dockerfile: a Node image that
// copies percore from where the percore image keeps it, runs as node, makes
// percore the entrypoint with the app as CMD, exposes percore's public and
// admin ports, and stops with SIGTERM.
func TestAppDockerfile(t *testing.T) {
	d := readDefaults(t)
	df, err := parseDockerfile(filepath.Join("docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	final := df.final()
	if from := df.expand(final.From); !strings.HasPrefix(from, "node:") {
		t.Errorf("the app image is FROM %s (%s by default), want a node image", final.From, from)
	}
	stages := map[string]stage{}
	for _, st := range df.Stages {
		stages[st.Name] = st
	}
	copied := false
	for _, in := range final.find("COPY") {
		c := parseCopy(in)
		if c.From == "" {
			continue
		}
		if src, ok := stages[c.From]; !ok || src.From != "${PERCORE_IMAGE}" {
			t.Errorf("line %d: COPY --from=%s, want a stage FROM ${PERCORE_IMAGE}", in.Line, c.From)
		}
		if !slices.Equal(c.Sources, []string{binaryPath}) || c.Dest != binaryPath {
			t.Errorf("line %d: COPY %v %s, want %s %s", in.Line, c.Sources, c.Dest, binaryPath, binaryPath)
		}
		copied = true
	}
	if !copied {
		t.Errorf("the app image copies no percore from another image")
	}
	if _, ok := df.globalArg("PERCORE_IMAGE"); !ok {
		t.Errorf("no ARG PERCORE_IMAGE=<default image> before the first FROM")
	}

	want := map[string]string{
		"ENTRYPOINT": `["percore","--"]`,
		"CMD":        `["node","server.js"]`,
		"USER":       "node",
		"STOPSIGNAL": "SIGTERM",
	}
	for cmd, w := range want {
		ins := final.find(cmd)
		if len(ins) != 1 {
			t.Errorf("%d %s instructions, want 1", len(ins), cmd)
			continue
		}
		got := ins[0].Args
		if strings.HasPrefix(w, "[") {
			b, _ := json.Marshal(execForm(t, ins[0]))
			got = string(b)
		}
		if got != w {
			t.Errorf("line %d: %s %s, want %s", ins[0].Line, cmd, ins[0].Args, w)
		}
	}
	var exposed []string
	for _, in := range final.find("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.Args)...)
	}
	for _, p := range []int{d.PublicPort, d.AdminPort} {
		if !slices.Contains(exposed, strconv.Itoa(p)) {
			t.Errorf("EXPOSE %v lacks percore's port %d", exposed, p)
		}
	}
}
