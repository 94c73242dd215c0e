package main

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
	"golang.org/x/sys/unix"
)

// release is one snapshot build of scripts/release.
type release struct {
	dir     string // the output folder
	version string // the stamped version
}

// npmPlatform is this machine's npm os-cpu, as in @percore/<os>-<cpu>.
func npmPlatform() string {
	return map[string]string{"amd64": "linux-x64", "arm64": "linux-arm64"}[runtime.GOARCH]
}

// buildRelease runs scripts/release --snapshot into out.
func buildRelease(out string) (release, error) {
	cmd := exec.Command("./scripts/release", "--snapshot", "--out", out)
	cmd.Dir = filepath.Join("..", "..")
	output, err := cmd.CombinedOutput()
	if err != nil {
		return release{}, fmt.Errorf("scripts/release --snapshot: %w\n%s", err, output)
	}
	m := regexp.MustCompile(`release: percore (\S+) `).FindSubmatch(output)
	if m == nil {
		return release{}, fmt.Errorf("scripts/release printed no version:\n%s", output)
	}
	return release{dir: out, version: string(m[1])}, nil
}

// npmEnv is the environment for npm: a cache of its own and no registry.
func npmEnv(cache string) []string {
	return append(os.Environ(), "npm_config_cache="+cache, "npm_config_offline=true",
		"npm_config_update_notifier=false", "npm_config_audit=false", "npm_config_fund=false")
}

// npmProject makes an npm project in a new folder that has percore as a
// dev dependency, with its platform packages taken from the release's
// tarballs, and runs npm install there with extra flags. It returns the
// folder, npm's output and npm's error.
func npmProject(t *testing.T, rel release, cache string, flags ...string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	tgz := func(name string) string {
		return "file:" + filepath.Join(rel.dir, "npm", name+"-"+rel.version+".tgz")
	}
	overrides := map[string]string{}
	for _, p := range []string{"linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"} {
		overrides["@percore/"+p] = tgz("percore-" + p)
	}
	pkg, _ := json.Marshal(map[string]any{
		"name": "app", "version": "1.0.0", "private": true,
		"scripts":         map[string]string{"start:multi": "percore -- node server.js", "percore": "percore"},
		"devDependencies": map[string]string{"percore": tgz("percore")},
		// Where the registry would serve the platform packages.
		"overrides": overrides,
	})
	if err := os.WriteFile(filepath.Join(dir, "package.json"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("npm", append([]string{"install"}, flags...)...)
	cmd.Dir, cmd.Env = dir, npmEnv(cache)
	out, err := cmd.CombinedOutput()
	return dir, string(out), err
}

// installedPlatforms lists node_modules/@percore.
func installedPlatforms(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "node_modules", "@percore"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// launchLauncher runs argv (the npm launcher, or npx) in dir with percore's
// test flags and args after it, as launchBin does for the binary.
func launchLauncher(t *testing.T, dir string, argv []string, attr *syscall.SysProcAttr, stdin *os.File, args ...string) *instance {
	t.Helper()
	full := append(append([]string(nil), argv...), testFlags(args)...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Dir, cmd.Stdin = dir, stdin
	cmd.Env = npmEnv(filepath.Join(dir, ".npm"))
	cmd.SysProcAttr = attr
	return startInstance(t, cmd, args)
}

// readyPids returns the pids of the ready workers in /status.
func readyPids(t *testing.T, in *instance) map[int]bool {
	t.Helper()
	pids := map[int]bool{}
	for _, w := range getStatus(t, in).Workers {
		if w.Ready {
			pids[w.PID] = true
		}
	}
	return pids
}

// theRelease is the snapshot release under test: the one scripts/test
// built, named by PERCORE_RELEASE_DIR, or one built now.
func theRelease(t *testing.T) (release, error) {
	if dir := os.Getenv("PERCORE_RELEASE_DIR"); dir != "" {
		names, err := filepath.Glob(filepath.Join(dir, "npm", "percore-[0-9]*.tgz"))
		if err != nil || len(names) != 1 {
			return release{}, fmt.Errorf("PERCORE_RELEASE_DIR=%s holds %d npm/percore-VERSION.tgz (%v), want 1", dir, len(names), err)
		}
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(names[0]), "percore-"), ".tgz")
		return release{dir: dir, version: v}, nil
	}
	start := time.Now()
	rel, err := buildRelease(t.TempDir())
	if err == nil {
		t.Logf("scripts/release --snapshot: %s, version %s", time.Since(start).Round(time.Second), rel.version)
	}
	return rel, err
}

// TestRelease builds a snapshot release once and checks what it made: the
// npm packages installed offline from its tarballs run percore through the
// launcher as the bare binary runs (arguments, signals, exit codes), npm
// installs only the platform package that fits, the binaries are what
// their names say, and a second build gives the same bytes.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds or installs a whole release; skipped with -short")
	}
	needNode(t)
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed: the npm packages cannot be tested")
	}
	if npmPlatform() == "" {
		t.Skipf("no percore npm package for linux-%s", runtime.GOARCH)
	}
	rel, err := theRelease(t)
	if err != nil {
		t.Fatal(err)
	}
	// A second build, to compare its bytes, only when asked: the suite
	// builds the release once (scripts/test's release step).
	var rel2 release
	var err2 error
	second := make(chan struct{})
	repro := os.Getenv("PERCORE_RELEASE_REPRO") != ""
	if repro {
		secondOut := t.TempDir()
		go func() {
			defer close(second)
			rel2, err2 = buildRelease(secondOut)
		}()
		t.Cleanup(func() { <-second })
	} else {
		close(second)
	}

	cache := t.TempDir()
	proj, out, err := npmProject(t, rel, cache)
	if err != nil {
		t.Fatalf("npm install --offline: %v\n%s", err, out)
	}
	if got := installedPlatforms(t, proj); len(got) != 1 || got[0] != npmPlatform() {
		t.Fatalf("node_modules/@percore holds %v, want [%s]", got, npmPlatform())
	}
	launcher := []string{filepath.Join(proj, "node_modules", ".bin", "percore")}
	app, err := filepath.Abs(appJS())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("checksums and sizes", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(rel.dir, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
		if len(lines) != 13 {
			t.Errorf("SHA256SUMS has %d lines, want 13 (4 binaries, 4 archives, 5 npm tarballs)", len(lines))
		}
		for _, line := range lines {
			sum, name, _ := strings.Cut(line, "  ")
			data, err := os.ReadFile(filepath.Join(rel.dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
				t.Errorf("%s: SHA256SUMS says %s, the file's is %x", name, sum, h)
			}
			t.Logf("%9d  %s", len(data), name)
		}
	})

	t.Run("version", func(t *testing.T) {
		cmd := exec.Command("npx", "percore", "version")
		cmd.Dir, cmd.Env = proj, npmEnv(cache)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "percore "+rel.version+"\n" {
			t.Errorf("npx percore version: %q (%v), want %q", out, err, "percore "+rel.version+"\n")
		}
	})

	t.Run("npx serves", func(t *testing.T) {
		in := launchLauncher(t, proj, []string{"npx", "percore"}, &syscall.SysProcAttr{Setpgid: true}, nil,
			"--workers", "2", "--", "node", app)
		in.waitLog("worker ready", 30*time.Second)
		var h hello
		getJSON(t, "http://"+in.addr+"/", &h)
		// npx runs sh, which runs the launcher, which runs percore, which
		// runs the worker. A SIGTERM to the launcher: its exit code comes
		// out of sh and npx.
		percore := parentOf(t, h.PID)
		if err := syscall.Kill(parentOf(t, percore), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := in.wait(20 * time.Second); code != 0 {
			t.Errorf("npx percore: exit code %d after SIGTERM to the launcher, want 0; logs:\n%s", code, in.logs.String())
		}
	})

	// npx and npm run start the launcher through sh -c and pass their SIGINT
	// and SIGTERM to that shell alone; dash dies of the SIGTERM and keeps the
	// SIGINT until its command ends. However npx or npm, or the launcher,
	// is stopped, percore stops gracefully and nothing is left.
	npx := []string{"npx", "percore"}
	npmRun := []string{"npm", "run", "percore", "--"}
	for _, c := range []struct {
		name     string
		argv     []string
		sig      syscall.Signal
		launcher bool   // the signal goes to the launcher, not to npx or npm
		shell    string // npm's script-shell, when not sh
	}{
		{"SIGTERM to npx", npx, syscall.SIGTERM, false, ""},
		{"SIGINT to npx", npx, syscall.SIGINT, false, ""},
		{"SIGINT to npm run", npmRun, syscall.SIGINT, false, ""},
		{"SIGKILL to npx", npx, syscall.SIGKILL, false, ""},
		{"SIGKILL to the launcher", npx, syscall.SIGKILL, true, ""},
		// bash replaces itself with the launcher, whose parent is then npx.
		{"SIGTERM to npx with bash as npm's shell", npx, syscall.SIGTERM, false, "bash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.shell != "" {
				path, err := exec.LookPath(c.shell)
				if err != nil {
					t.Skipf("no %s: %v", c.shell, err)
				}
				t.Setenv("npm_config_script_shell", path)
			}
			stopThroughNpm(t, proj, app, c.argv, c.sig, c.launcher)
		})
	}

	t.Run("Ctrl-C in a terminal through npx", func(t *testing.T) {
		// npm passes its SIGINT to its shell, which catches it: that must
		// not become a second SIGINT to percore.
		master, tty := openPty(t)
		in := launchLauncher(t, proj, npx, &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}, tty,
			"--workers", "1", "--", "node", app)
		in.waitLog("worker ready", 30*time.Second)
		if _, err := master.Write([]byte{3}); err != nil {
			t.Fatal(err)
		}
		in.wait(testutil.Scaled(40 * time.Second))
		in.findLog("stopping gracefully", time.Second)
		in.findLog("stopped", time.Second)
		if strings.Contains(in.logs.String(), "stopping fast") {
			t.Errorf("Ctrl-C through npx stopped percore fast (it got SIGINT twice); logs:\n%s", in.logs.String())
		}
	})

	t.Run("SIGHUP reloads, SIGINT stops", func(t *testing.T) {
		in := launchLauncher(t, proj, launcher, &syscall.SysProcAttr{Setpgid: true}, nil,
			"--workers", "2", "--", "node", app)
		waitServing(t, in, 2, "before the reload")
		before := readyPids(t, in)
		stop := make(chan struct{})
		res, wait := steadyLoad("http://"+in.addr+"/", 2, stop)
		time.Sleep(200 * time.Millisecond)
		in.signal(syscall.SIGHUP)
		in.waitLog("reload done", 30*time.Second)
		close(stop)
		wait()
		res.check(t, "a SIGHUP to the launcher")
		after := readyPids(t, in)
		for pid := range after {
			if before[pid] {
				t.Errorf("worker pid %d was not replaced: %v before, %v after", pid, before, after)
			}
		}
		in.signal(syscall.SIGINT)
		if code := in.wait(20 * time.Second); code != 0 {
			t.Errorf("exit code %d after SIGINT, want 0; logs:\n%s", code, in.logs.String())
		}
		in.findLog("stopping gracefully", time.Second)
		if strings.Contains(in.logs.String(), "stopping fast") {
			t.Errorf("one SIGINT to the launcher stopped percore fast; logs:\n%s", in.logs.String())
		}
	})

	t.Run("Ctrl-C in a terminal", func(t *testing.T) {
		// The launcher leads a session whose terminal is a pty: Ctrl-C there
		// reaches the launcher and percore, and percore must see it once.
		master, tty := openPty(t)
		in := launchLauncher(t, proj, launcher, &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}, tty,
			"--workers", "1", "--", "node", app)
		in.waitLog("worker ready", 30*time.Second)
		if _, err := master.Write([]byte{3}); err != nil {
			t.Fatal(err)
		}
		if code := in.wait(20 * time.Second); code != 0 {
			t.Errorf("exit code %d after Ctrl-C, want 0; logs:\n%s", code, in.logs.String())
		}
		in.findLog("stopping gracefully", time.Second)
		if strings.Contains(in.logs.String(), "stopping fast") {
			t.Errorf("Ctrl-C stopped percore fast (it got SIGINT twice); logs:\n%s", in.logs.String())
		}
	})

	t.Run("crash loop exit code", func(t *testing.T) {
		crash, err := filepath.Abs(filepath.Join("testdata", "crash.js"))
		if err != nil {
			t.Fatal(err)
		}
		in := launchLauncher(t, proj, launcher, &syscall.SysProcAttr{Setpgid: true}, nil,
			"--workers", "1", "--", "node", crash)
		if code := in.wait(60 * time.Second); code != exitCrashLoop {
			t.Errorf("exit code %d, want percore's crash-loop code %d; logs:\n%s", code, exitCrashLoop, in.logs.String())
		}
	})

	t.Run("platform packages", func(t *testing.T) {
		// npm chooses the optional dependency by os and cpu.
		other, out, err := npmProject(t, rel, cache, "--os", "darwin", "--cpu", "arm64")
		if err != nil {
			t.Fatalf("npm install --os darwin --cpu arm64: %v\n%s", err, out)
		}
		if got := installedPlatforms(t, other); len(got) != 1 || got[0] != "darwin-arm64" {
			t.Errorf("with --os darwin --cpu arm64, node_modules/@percore holds %v, want [darwin-arm64]", got)
		}
		// Here the launcher finds no package for this machine.
		cmd := exec.Command(filepath.Join(other, "node_modules", ".bin", "percore"), "version")
		out2, err := cmd.CombinedOutput()
		msg := string(out2)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
			!strings.Contains(msg, "@percore/"+npmPlatform()) || !strings.Contains(msg, "go install") ||
			!strings.Contains(msg, "releases") {
			t.Errorf("launcher without its platform package: %v, %q; want exit 1 and a message naming %s and the other ways to install",
				err, msg, npmPlatform())
		}
		// A platform package for another os and cpu refuses to install.
		wrong := t.TempDir()
		os.WriteFile(filepath.Join(wrong, "package.json"), []byte(`{"name":"x","version":"1.0.0","private":true}`), 0o644)
		cmd = exec.Command("npm", "install", filepath.Join(rel.dir, "npm", "percore-darwin-arm64-"+rel.version+".tgz"))
		cmd.Dir, cmd.Env = wrong, npmEnv(cache)
		out2, err = cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out2), "EBADPLATFORM") {
			t.Errorf("installing @percore/darwin-arm64 here: %v, want EBADPLATFORM:\n%s", err, out2)
		}
	})

	t.Run("binaries", func(t *testing.T) {
		for _, c := range []struct {
			name string
			cpu  macho.Cpu
		}{{"percore-darwin-amd64", macho.CpuAmd64}, {"percore-darwin-arm64", macho.CpuArm64}} {
			f, err := macho.Open(filepath.Join(rel.dir, c.name))
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if f.Cpu != c.cpu || f.Type != macho.TypeExec || f.Magic != macho.Magic64 {
				t.Errorf("%s: Mach-O cpu %v type %v magic %#x, want %v executable, 64-bit", c.name, f.Cpu, f.Type, f.Magic, c.cpu)
			}
			f.Close()
		}
		for _, c := range []struct {
			name    string
			machine elf.Machine
		}{{"percore-linux-amd64", elf.EM_X86_64}, {"percore-linux-arm64", elf.EM_AARCH64}} {
			f, err := elf.Open(filepath.Join(rel.dir, c.name))
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s is not static: it has %v", c.name, p.Type)
				}
			}
			if f.Machine != c.machine {
				t.Errorf("%s: ELF machine %v, want %v", c.name, f.Machine, c.machine)
			}
			f.Close()
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		if !repro {
			t.Skip("set PERCORE_RELEASE_REPRO=1 to build the release a second time and compare the bytes")
		}
		<-second
		if err2 != nil {
			t.Fatal(err2)
		}
		if rel2.version != rel.version {
			t.Fatalf("second build's version %s, first %s", rel2.version, rel.version)
		}
		a, b := treeFiles(t, rel.dir), treeFiles(t, rel2.dir)
		if len(a) != len(b) {
			t.Errorf("first build made %d files, second %d", len(a), len(b))
		}
		for name, data := range a {
			if !bytes.Equal(data, b[name]) {
				t.Errorf("%s differs between two builds", name)
			}
		}
	})
}

// stopThroughNpm starts percore with the launcher through argv (npx, or
// npm run) in the npm project proj, sends sig to npx or npm (to the
// launcher if toLauncher), and checks that percore stops gracefully within
// its shutdown timeout, that its port is free then, that no process is left,
// and how npx or npm ended.
func stopThroughNpm(t *testing.T, proj, app string, argv []string, sig syscall.Signal, toLauncher bool) {
	t.Helper()
	const budget = 20 * time.Second
	in := launchLauncher(t, proj, argv, &syscall.SysProcAttr{Setpgid: true}, nil,
		"--workers", "1", "--shutdown-timeout", budget.String(), "--", "node", app)
	in.waitLog("worker ready", 30*time.Second)
	var h hello
	getJSON(t, "http://"+in.addr+"/", &h)
	percore := parentOf(t, h.PID)
	launcher := parentOf(t, percore)
	// npm runs the launcher through sh -c; bash (not dash) replaces itself
	// with it, and npm's signals then reach the launcher.
	shell := parentOf(t, launcher) != in.cmd.Process.Pid
	target := in.cmd.Process.Pid
	if toLauncher {
		target = launcher
	}
	start := time.Now()
	if err := syscall.Kill(target, sig); err != nil {
		t.Fatal(err)
	}
	// in.exited closes once npx or npm has exited and every process that
	// shares its stderr (the launcher, percore, the worker) has too.
	in.wait(testutil.Scaled(budget + 20*time.Second))
	took := time.Since(start)
	t.Logf("%s to %s: everything gone in %s; npx or npm: %s", sig, map[bool]string{true: "the launcher", false: argv[0]}[toLauncher],
		took.Round(time.Millisecond), endOf(in))
	if toLauncher {
		in.findLog("the launcher that started percore has ended", time.Second)
	}
	stopping := in.findLog("stopping gracefully", time.Second)
	in.findLog("stopped", time.Second)
	if strings.Contains(in.logs.String(), "stopping fast") {
		t.Errorf("percore stopped fast; logs:\n%s", in.logs.String())
	}
	wantSig := "terminated"
	if sig == syscall.SIGINT {
		wantSig = "interrupt"
	}
	if got, _ := stopping["signal"].(string); got != wantSig {
		t.Errorf("percore stopped on %q, want %q; logs:\n%s", got, wantSig, in.logs.String())
	}
	if took > testutil.Scaled(budget) {
		t.Errorf("percore took %s to stop, more than its shutdown timeout %s", took, budget)
	}
	for _, addr := range []string{in.addr, in.admin} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("after percore stopped, %s is not free: %v", addr, err)
			continue
		}
		ln.Close()
	}
	if pids := testutil.MarkedProcesses("PERCORE_TEST_MARK", in.mark); len(pids) > 0 {
		t.Errorf("processes left after percore stopped: %v", pids)
	}
	// npx or npm ends with percore's exit code, or, when its shell was
	// signalled, as that shell did: npm then raises the same signal.
	want := "exit 0"
	switch {
	case sig == syscall.SIGKILL && !toLauncher:
		want = "signal killed"
	case toLauncher:
		want = "" // whatever a shell or npm makes of a SIGKILLed command
	case shell:
		want = "signal " + sig.String()
	}
	if got := endOf(in); want != "" && got != want {
		t.Errorf("%s ended with %s, want %s; logs:\n%s", argv[0], got, want, in.logs.String())
	}
}

// endOf says how the process in ran ended: "exit N" or "signal NAME".
func endOf(in *instance) string {
	var ee *exec.ExitError
	if !errors.As(in.err, &ee) {
		return "exit 0"
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ee.ExitCode())
}

// treeFiles reads every file under dir, by relative path.
func treeFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// openPty opens a pseudo-terminal and returns its master and its terminal.
func openPty(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty's terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// TestReleaseWorkflowLints checks the GitHub workflows with actionlint, and
// that actionlint finds a mistake.
func TestReleaseWorkflowLints(t *testing.T) {
	lint, err := filepath.Abs(filepath.Join("..", "..", ".tools", "bin", "actionlint"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lint); err != nil {
		t.Skip("actionlint is not installed: run ./scripts/install-tools")
	}
	workflows, _ := filepath.Glob(filepath.Join("..", "..", ".github", "workflows", "*.yml"))
	if len(workflows) == 0 {
		t.Fatal("no workflows in .github/workflows")
	}
	if out, err := exec.Command(lint, workflows...).CombinedOutput(); err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}
	broken := filepath.Join(t.TempDir(), "broken.yml")
	os.WriteFile(broken, []byte("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n"), 0o644)
	if out, err := exec.Command(lint, broken).CombinedOutput(); err == nil {
		t.Errorf("actionlint found nothing wrong in a workflow with an unknown property:\n%s", out)
	}
}
