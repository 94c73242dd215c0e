package health

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

type fakeStatus struct{}

func (fakeStatus) Status() Status { return Status{Version: "test"} }

// TestPageSize keeps the page small: it is embedded in every binary and
// loaded over whatever link reaches the admin port.
func TestPageSize(t *testing.T) {
	const limit = 30 << 10
	if n := len(pageHTML); n > limit {
		t.Fatalf("the page is %d bytes, over the %d-byte budget", n, limit)
	}
	t.Logf("page: %d bytes", len(pageHTML))
	for _, ref := range []string{"http://", "https://", "//fonts", "@import", "src=\""} {
		if ref == "http://" {
			// The SVG namespace is a name, not a fetch.
			if strings.Count(string(pageHTML), ref) != strings.Count(string(pageHTML), "http://www.w3.org/2000/svg") {
				t.Errorf("the page refers to an outside resource with %q", ref)
			}
			continue
		}
		if strings.Contains(string(pageHTML), ref) {
			t.Errorf("the page refers to an outside resource with %q", ref)
		}
	}
}

// TestPageCSP checks the page is sent with a policy that runs only its own
// inline script and style, by hash, and lets it read only its own origin.
func TestPageCSP(t *testing.T) {
	_, base := startServer(t, Config{Workers: &fakeWorkers{}, Status: fakeStatus{}})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, base+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s / = %d %q, want 200 text/html", method, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		directives := map[string]string{}
		for _, d := range strings.Split(csp, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
			directives[name] = value
		}
		for name, want := range map[string]string{
			"default-src": "'none'", "connect-src": "'self'", "base-uri": "'none'",
			"form-action": "'none'", "frame-ancestors": "'none'",
			"script-src": hashOf(t, "script"), "style-src": hashOf(t, "style"),
		} {
			if directives[name] != want {
				t.Errorf("%s: CSP %s = %q, want %q (policy %q)", method, name, directives[name], want, csp)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("CSP allows unsafe sources: %q", csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s / has no X-Content-Type-Options: nosniff", method)
		}
	}
	// The page is read-only: nothing but GET and HEAD.
	resp, err := http.Post(base+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", resp.StatusCode)
	}
}

// hashOf computes, independently of the server, the hash of the page's one
// inline element tag.
func hashOf(t *testing.T, tag string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllSubmatch(pageHTML, -1)
	if len(m) != 1 {
		t.Fatalf("the page has %d inline <%s> elements, want 1", len(m), tag)
	}
	sum := sha256.Sum256(m[0][1])
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func TestPageNeedsStatus(t *testing.T) {
	_, base := startServer(t, Config{Workers: &fakeWorkers{}})
	if code, _ := get(t, base+"/"); code != 404 {
		t.Errorf("/ without a status source = %d, want 404", code)
	}
}
