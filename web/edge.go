package web

import (
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// The edge of the server: who the client is (its address, behind trusted
// proxies only), whether it came over TLS, which cookie names it uses, and
// which host links to this instance are built from.

// ipExtractor returns the client address: the peer, unless the peer is one
// of trusted (NOFX_TRUSTED_PROXIES), and only then the nearest untrusted
// address of X-Forwarded-For. Loopback and private peers are not trusted
// unless listed, so that a client cannot choose its own address.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// peerTrusted reports whether the request's peer is a trusted proxy.
func peerTrusted(r *http.Request, trusted []*net.IPNet) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// schemeExtractor returns https for a TLS connection, or for a trusted
// proxy's X-Forwarded-Proto: https; any other client's header is ignored.
func schemeExtractor(trusted []*net.IPNet) func(*http.Request) string {
	return func(r *http.Request) string {
		if r.TLS != nil {
			return "https"
		}
		if peerTrusted(r, trusted) && strings.EqualFold(strings.TrimSpace(r.Header.Get(echo.HeaderXForwardedProto)), "https") {
			return "https"
		}
		return "http"
	}
}

// requestIDPattern is what a client's X-Request-Id must look like to be kept.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// plainRequestID drops a client's X-Request-Id unless it is short and plain,
// so that the request id middleware makes a fresh one instead.
func plainRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && (len(h.Values(echo.HeaderXRequestID)) > 1 || !requestIDPattern.MatchString(id)) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

// hostAllowed reports whether links may be built from the request's Host:
// a host of NOFX_ALLOWED_HOSTS, the listen address, or loopback.
func (s *Server) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if host == "" {
		return false
	}
	for _, h := range s.cfg.AllowedHosts {
		if h == host {
			return true
		}
	}
	if listen := s.listenHost(); listen != "" && strings.EqualFold(listen, host) {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// requireLinkHost guards routes that build links to this instance: without
// NOFX_BASE_URL, a Host header that is not allowed gets 400 rather than
// links to wherever a client says.
func (s *Server) requireLinkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.BaseURL == "" && !s.hostAllowed(c.Request().Host) {
			return echo.NewHTTPError(http.StatusBadRequest,
				"This address is not one of the instance's hosts: set NOFX_BASE_URL, or add the host to NOFX_ALLOWED_HOSTS.")
		}
		return next(c)
	}
}

// baseURL is the instance's public address: NOFX_BASE_URL, or the
// request's scheme and Host when that host is allowed (routes that build
// links check it with requireLinkHost), else the listen address.
func (s *Server) baseURL(c echo.Context) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	host := c.Request().Host
	if !s.hostAllowed(host) {
		host = s.listenHost()
	}
	return c.Scheme() + "://" + host
}

// listenHost is the listen address as a host to link to: an address that
// listens on every interface (":8080", "0.0.0.0:8080") is localhost.
func (s *Server) listenHost() string {
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return s.cfg.Addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
