package health

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// pageHTML is the live page served at the admin listener's "/": one file
// with its style and script inline, reading /status once a second. It
// changes nothing, and shows nothing /status does not.
//
//go:embed page.html
var pageHTML []byte

// page is the live page and the Content-Security-Policy it is sent with.
type page struct {
	body []byte
	csp  string
}

// newPage builds the policy that lets only the page's own inline style and
// script run, by their hashes, and lets the script read only this origin;
// no other source, frame, form, or string-to-HTML sink is allowed.
func newPage(body []byte) page {
	return page{body: body, csp: fmt.Sprintf("default-src 'none'; script-src %s; style-src %s; connect-src 'self'; "+
		"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "+
		"require-trusted-types-for 'script'", inlineHash(body, "script"), inlineHash(body, "style"))}
}

// inlineHash returns the CSP source of the first inline <tag> element of
// html, or 'none' when it has none.
func inlineHash(html []byte, tag string) string {
	_, rest, ok := strings.Cut(string(html), "<"+tag+">")
	if !ok {
		return "'none'"
	}
	content, _, ok := strings.Cut(rest, "</"+tag+">")
	if !ok {
		return "'none'"
	}
	sum := sha256.Sum256([]byte(content))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// serve answers GET and HEAD of the page.
func (p page) serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(p.body)
}
