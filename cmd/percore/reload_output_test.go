package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/health"
)

// adminBody GETs path on the admin listener and returns the body.
func adminBody(t *testing.T, in *instance, path string) string {
	t.Helper()
	resp, err := client.Get("http://" + in.admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d, %v", path, resp.StatusCode, err)
	}
	return string(body)
}

// TestFailedReloadKeepsAppOutputOffTheAdminListener: new code that prints a
// secret (a DATABASE_URL with its password) on stdout and stderr and then
// fails, at boot or by never listening, makes the reload fail. The secret is
// in percore's log, with the rest of the new worker's output, and nowhere
// on the admin listener: /status (which the live page and percore status
// show), /metrics, the page itself, /readyz and /healthz. /status says in percore's own words
// that the reload failed, why, and that the output is in the log. Before,
// reload.error ended with the new worker's last line of output.
func TestFailedReloadKeepsAppOutputOffTheAdminListener(t *testing.T) {
	needNode(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "app.js")
	good, err := os.ReadFile(appJS())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(app, good, 0o644); err != nil {
		t.Fatal(err)
	}
	in := start(t, "--workers", "1", "--ready-timeout", "3s", "--", "node", app)

	for i, c := range []struct {
		name, code, why string
	}{
		{"crash at boot", "process.exitCode = 3;", "exit code 3"},
		{"never listens", "setInterval(() => {}, 1000);", "not ready in time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			secret := fmt.Sprintf("s3cr3t-%d-%d", os.Getpid(), i)
			broken := fmt.Sprintf("console.log(\"DATABASE_URL=postgres://app:%[1]s-out@db/prod\");\n"+
				"console.error(\"DATABASE_URL=postgres://app:%[1]s-err@db/prod\");\n%[2]s\n", secret, c.code)
			if err := os.WriteFile(app, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			in.signal(syscall.SIGHUP)
			failed := in.waitLog("RELOAD FAILED", 30*time.Second)
			msg, _ := failed["@message"].(string)
			for _, want := range []string{secret + "-out", secret + "-err"} {
				if !strings.Contains(msg, want) {
					t.Errorf("percore's log does not show the new worker's output %q: %q", want, msg)
				}
			}

			raw := adminBody(t, in, "/status")
			var st health.Status
			if err := json.Unmarshal([]byte(raw), &st); err != nil {
				t.Fatalf("decode /status: %v", err)
			}
			t.Logf("/status reload.error: %s", st.Reload.Error)
			if st.Reload.State != "failed" || !strings.Contains(st.Reload.Error, c.why) ||
				!strings.Contains(st.Reload.Error, "percore's log") {
				t.Errorf("/status reload = %+v; want failed, saying %q and where the output is", st.Reload, c.why)
			}
			out, err := exec.Command(percoreBin, "status", "--admin", in.admin).CombinedOutput()
			if err != nil {
				t.Fatalf("percore status: %v\n%s", err, out)
			}
			for path, body := range map[string]string{
				"/status": raw, "/metrics": adminBody(t, in, "/metrics"), "/": adminBody(t, in, "/"),
				"/readyz?verbose": adminBody(t, in, "/readyz?verbose"), "/healthz": adminBody(t, in, "/healthz"),
				"percore status": string(out),
			} {
				if strings.Contains(body, secret) || strings.Contains(body, "DATABASE_URL") {
					t.Errorf("%s shows the new worker's output:\n%s", path, body)
				}
			}
		})
	}
}
