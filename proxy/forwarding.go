package proxy

import "strings"

// forwardingHeaders are the request headers that carry a client's address,
// scheme or host as a proxy saw it, as the libraries and frameworks that
// apps use read them. From a peer outside Trusted every line of each is
// removed, and percore sets its own X-Forwarded-For, -Proto and -Host
// (setForwarded); from a trusted peer they are kept, even when its
// Connection header names them (removeRequestHops).
//
// A name ending in "*" stands for every name it begins. Names compare
// without case and with "_" taken for "-": CGI, WSGI, PHP and Rack read
// X_Forwarded_For as they read X-Forwarded-For (HTTP_X_FORWARDED_FOR).
//
// Via is not here: it names the proxies a message passed and their
// protocol, not the client, and each proxy appends to it (RFC 9110 section
// 7.6.3).
var forwardingHeaders = [...]string{
	// Express (req.ip, req.protocol, req.hostname under "trust proxy"),
	// Fastify (request.ip, .protocol, .host under trustProxy), Koa
	// (app.proxy), Rails (ActionDispatch::RemoteIp, Rack::Request), Django
	// (USE_X_FORWARDED_HOST, SECURE_PROXY_SSL_HEADER), request-ip, Next.js.
	"X-Forwarded-For",
	"X-Forwarded-Proto",
	"X-Forwarded-Host",
	"X-Forwarded-Port",          // Rack::Request#port, Django's USE_X_FORWARDED_PORT, SvelteKit's PORT_HEADER
	"X-Forwarded-Ssl",           // Rack::Request#scheme, gunicorn's secure_scheme_headers
	"X-Forwarded-Scheme",        // Rack::Request#scheme, ingress-nginx
	"X-Forwarded-Prefix",        // Spring's ForwardedHeaderFilter, Traefik
	"X-Forwarded-*",             // every other one: -Server (Apache), -Client-Cert (Envoy), ...
	"Forwarded",                 // RFC 7239: Rack::Request, request-ip, python-ipware
	"X-Real-IP",                 // nginx's proxy recipe: request-ip, Next.js, python-ipware
	"X-Client-IP",               // request-ip (the first header it reads), Azure App Service, python-ipware
	"Client-IP",                 // Rails' ActionDispatch::RemoteIp (HTTP_CLIENT_IP), python-ipware
	"X-Cluster-Client-IP",       // Rackspace and Riverbed load balancers: request-ip, python-ipware
	"X-Forwarded",               // Squid: request-ip, python-ipware
	"Forwarded-For",             // request-ip, python-ipware
	"CF-Connecting-IP",          // Cloudflare: request-ip, python-ipware
	"CF-Connecting-IPv6",        // Cloudflare's Pseudo IPv4: the client's IPv6 address
	"CF-Pseudo-IPv4",            // Cloudflare's Pseudo IPv4: request-ip's last resort
	"CF-Visitor",                // Cloudflare: the client's scheme, {"scheme":"https"}
	"True-Client-IP",            // Akamai, Cloudflare Enterprise: request-ip, SvelteKit's ADDRESS_HEADER example
	"Fastly-Client-IP",          // Fastly, Firebase Hosting: request-ip, python-ipware
	"X-0-Client-IP",             // Edgio: request-ip after 3.3.0
	"X-AppEngine-User-IP",       // Google App Engine: request-ip, python-ipware
	"Fly-Client-IP",             // Fly.io's proxy: python-ipware
	"X-Azure-ClientIP",          // Azure Front Door: python-ipware
	"X-Azure-SocketIP",          // Azure Front Door
	"DO-Connecting-IP",          // DigitalOcean App Platform: python-ipware
	"X-Envoy-External-Address",  // Envoy, Istio: python-ipware
	"X-Original-Forwarded-For",  // ingress-nginx: the X-Forwarded-For it replaced
	"CloudFront-Viewer-Address", // AWS CloudFront: the client's address and port
	"X-Originating-IP",          // the address-spoofing lists of security scanners
	"X-Remote-IP",               // likewise
	"X-Remote-Addr",             // likewise
	"X-ProxyUser-IP",            // Google's proxies; PHP bot blockers
	"Proxy-Client-IP",           // Apache's WebLogic plug-in: the Java getIpAddr idiom
	"WL-Proxy-Client-IP",        // likewise
	"Front-End-Https",           // Microsoft's front ends: Plack's ReverseProxy
}

// ForwardingHeaders returns the names of the headers removed from the
// requests of peers outside Trusted: X-Forwarded-For, -Proto and -Host,
// which percore then sets itself, and the other client-address, scheme and
// host headers that common libraries read. A name ending in "*" stands for
// every name it begins.
func ForwardingHeaders() []string {
	return append([]string(nil), forwardingHeaders[:]...)
}

// forwardingNames indexes forwardingHeaders for isForwardingHeader.
var forwardingNames = indexNames(forwardingHeaders[:])

// nameIndex is a set of header names, lower case with "-" for "_", held by
// length so that a look-up compares a name with the few of its length
// only, and the prefixes the names ending in "*" stand for.
type nameIndex struct {
	byLen    [][]string
	prefixes []string
}

func indexNames(names []string) nameIndex {
	var ix nameIndex
	for _, name := range names {
		name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if prefix, ok := strings.CutSuffix(name, "*"); ok {
			ix.prefixes = append(ix.prefixes, prefix)
			continue
		}
		for len(ix.byLen) <= len(name) {
			ix.byLen = append(ix.byLen, nil)
		}
		ix.byLen[len(name)] = append(ix.byLen[len(name)], name)
	}
	return ix
}

// contains reports whether the set holds name, or a name one of its
// prefixes begins with something after it. It allocates nothing.
func (ix *nameIndex) contains(name []byte) bool {
	for _, p := range ix.prefixes {
		if len(name) > len(p) && sameName(name[:len(p)], p) {
			return true
		}
	}
	if len(name) >= len(ix.byLen) {
		return false
	}
	for _, n := range ix.byLen[len(name)] {
		if sameName(name, n) {
			return true
		}
	}
	return false
}

// sameName reports whether name equals lower, a lower-case name with "-"
// for "_" of the same length, compared without case and with "_" taken for
// "-".
func sameName(name []byte, lower string) bool {
	for i := range len(lower) {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// isForwardingHeader reports whether a header of this name is removed from
// an untrusted peer's request: a name of forwardingHeaders.
func isForwardingHeader(name []byte) bool {
	return forwardingNames.contains(name)
}
