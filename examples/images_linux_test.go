package examples_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// images are the container lane's images, all made on this machine: no
// registry is asked for anything.
type images struct {
	node    string // the base image: this machine's node, npm, sh and sleep
	percore string // the root Dockerfile's image
	app     string // examples/docker/Dockerfile's image of the test app
}

// Image names. The base and Go images are tagged with a hash of the files
// they hold and reused while those are unchanged; the Dockerfiles' images
// are built each run, which podman's layer cache makes quick.
const (
	nodeRepo       = "localhost/percore-test/node"
	goRepo         = "localhost/percore-test/go"
	percoreRepo    = "localhost/percore-test/percore-binary"
	percoreImage   = "localhost/percore-test/percore:latest"
	appImage       = "localhost/percore-test/app:latest"
	imagePATH      = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	appContext     = "docker/testdata/app"
	appDockerfile  = "docker/Dockerfile"
	rootDockerfile = "Dockerfile"
)

// buildImages makes the lane's images and logs how long each took.
func buildImages(t *testing.T, pm *podman) images {
	t.Helper()
	var im images
	step := func(what string, f func() string) string {
		start := time.Now()
		name := f()
		t.Logf("image %s (%s): %s", name, what, time.Since(start).Round(10*time.Millisecond))
		return name
	}
	im.node = step("base: the machine's node and its libraries", func() string {
		return pm.importRootfs(t, nodeRepo, nodeRootfs(t))
	})
	im.percore = step("percore", func() string { return buildPercoreImage(t, pm) })
	im.app = step("the app, from examples/docker/Dockerfile", func() string {
		pm.build(t, appImage, appDockerfile, appContext,
			"--build-arg", "PERCORE_IMAGE="+im.percore, "--build-arg", "NODE_IMAGE="+im.node)
		return appImage
	})
	return im
}

// nodeRootfs is a stand-in for node:20-slim made of this machine's files:
// node at /usr/local/bin/node, npm (the Dockerfile runs npm ci), sh and env
// (npm's #! line), sleep (the orphans the test app makes), their shared
// libraries, and an /etc/passwd with root and node (uid 1000) only, as in the
// node images; USER node needs it, and other uids have no entry.
func nodeRootfs(t *testing.T) *rootfs {
	t.Helper()
	r := newRootfs()
	bins := map[string]string{needRuntime(t, "node"): "/usr/local/bin/node"}
	for name, dst := range map[string]string{"sh": "/bin/sh", "sleep": "/bin/sleep", "env": "/usr/bin/env"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("the base image needs %s: %v", name, err)
		}
		bins[p] = dst
	}
	for src, dst := range bins {
		if err := r.binary(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	npm, err := exec.LookPath("npm")
	if err == nil {
		npm, err = filepath.EvalSymlinks(npm) // …/node_modules/npm/bin/npm-cli.js
	}
	npmRoot := filepath.Dir(filepath.Dir(npm))
	if err != nil || filepath.Base(npmRoot) != "npm" {
		t.Fatalf("the base image needs npm's package directory; npm is at %q (%v)", npm, err)
	}
	if err := r.tree(npmRoot, "/usr/local/lib/node_modules/npm"); err != nil {
		t.Fatal(err)
	}
	r.symlink("../lib/node_modules/npm/bin/npm-cli.js", "/usr/local/bin/npm")
	r.data("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n", 0o644)
	r.data("/etc/group", "root:x:0:\nnode:x:1000:\n", 0o644)
	r.dir("/root", 0o700, 0)
	r.dir("/home/node", 0o755, 1000)
	r.dir("/tmp", 0o777|fs.ModeSticky, 0)
	r.env = []string{imagePATH}
	return r
}

// buildPercoreImage builds the root Dockerfile, as a user's
// `docker build -t percore .` does, from a Go image of this machine's own
// toolchain. The build stage's `go mod download` and `go build` get the
// machine's module cache (read-only, with GOPROXY=off: offline) and build
// cache as volumes, so the build takes seconds: TestMain has just built the
// same packages with the same flags. Without those caches, a build on two
// busy cores took over three minutes, the lane's whole budget. When the
// module cache lacks a module that go.mod needs, the image is made of
// TestMain's binary instead, and the test says so.
func buildPercoreImage(t *testing.T, pm *podman) string {
	t.Helper()
	env := goEnv(t)
	offline := exec.Command("go", "mod", "download")
	offline.Dir = repoRoot()
	offline.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	if out, err := offline.CombinedOutput(); err != nil {
		t.Logf("the module cache lacks modules go.mod needs (%v: %s); the percore image holds the binary TestMain built instead of one the root Dockerfile builds (go mod download fills the cache)", err, out)
		r := newRootfs()
		if err := r.file(percoreBin, binaryPath); err != nil {
			t.Fatal(err)
		}
		return pm.importRootfs(t, percoreRepo, r)
	}
	goImage := pm.importRootfs(t, goRepo, goRootfs(t, env))
	// No layer cache: with the build cache, a build from the start takes
	// as long, and the cache would keep the Go stage's layers of every
	// source tree built.
	pm.build(t, percoreImage, rootDockerfile, repoRoot(), "--layers=false",
		"--build-arg", "GO_IMAGE="+goImage, "--build-arg", "VERSION="+testVersion,
		"--platform", "linux/"+runtime.GOARCH,
		"--volume", env["GOCACHE"]+":"+env["GOCACHE"],
		"--volume", env["GOMODCACHE"]+":"+env["GOMODCACHE"]+":ro")
	out := pm.output(t, append(append([]string{"run", "--rm", "--network", "none"}, pm.ulimits...), percoreImage, "version")...)
	if want := "percore " + testVersion; out != want {
		t.Fatalf("the percore image's `percore version` printed %q, want %q", out, want)
	}
	return percoreImage
}

// goEnv returns this machine's go env settings that the Go image copies.
func goEnv(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("go", "env", "-json", "GOROOT", "GOCACHE", "GOMODCACHE", "GOFLAGS").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	env := map[string]string{}
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatalf("go env: %v", err)
	}
	for _, k := range []string{"GOROOT", "GOCACHE", "GOMODCACHE"} {
		if !filepath.IsAbs(env[k]) {
			t.Fatalf("go env %s is %q; the Go image needs a directory", k, env[k])
		}
	}
	return env
}

// goRootfs is a Go image made of this machine's toolchain: GOROOT at the
// same path, sh for RUN, and go env settings equal to the machine's, so that
// a build in it finds the machine's build cache entries.
func goRootfs(t *testing.T, env map[string]string) *rootfs {
	t.Helper()
	r := newRootfs()
	if err := r.tree(env["GOROOT"], env["GOROOT"]); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err == nil {
		err = r.binary(sh, "/bin/sh")
	}
	if err != nil {
		t.Fatalf("the Go image needs sh: %v", err)
	}
	r.dir("/root", 0o700, 0)
	r.dir("/tmp", 0o777|fs.ModeSticky, 0)
	r.env = []string{
		fmt.Sprintf("PATH=%s/bin:%s", env["GOROOT"], imagePATH[len("PATH="):]),
		"HOME=/root", "GOTOOLCHAIN=local", "GOPROXY=off",
		"GOCACHE=" + env["GOCACHE"], "GOMODCACHE=" + env["GOMODCACHE"],
	}
	if env["GOFLAGS"] != "" {
		r.env = append(r.env, "GOFLAGS="+env["GOFLAGS"])
	}
	return r
}
