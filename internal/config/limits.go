package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Rate is a limit of N events per Per; the zero Rate is no limit ("off").
type Rate struct {
	N   int
	Per time.Duration
}

// Off reports whether the rate limits nothing.
func (r Rate) Off() bool { return r.N <= 0 || r.Per <= 0 }

// String writes the rate as N/DURATION, or "off".
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// ParseRate reads "N/DURATION" (such as 1000/15m, 10/1s or 10/s) or "off".
func ParseRate(v string) (Rate, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "off") {
		return Rate{}, nil
	}
	count, per, ok := strings.Cut(v, "/")
	if !ok {
		return Rate{}, fmt.Errorf("must be N/DURATION, such as 100/15m, or off, not %q", v)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n < 1 || n > 1_000_000 {
		return Rate{}, fmt.Errorf("the count in %q must be a whole number from 1 to 1000000", v)
	}
	per = strings.TrimSpace(per)
	if per == "s" || per == "m" || per == "h" {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d < time.Second || d > 24*time.Hour {
		return Rate{}, fmt.Errorf("the duration in %q must be from 1s to 24h, such as 15m", v)
	}
	return Rate{N: n, Per: d}, nil
}

func rateVar(getenv func(string) string, name, def string) (Rate, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		v = def
	}
	r, err := ParseRate(v)
	if err != nil {
		return Rate{}, &Error{name, err.Error()}
	}
	return r, nil
}

// parseCIDRs reads a comma-separated list of CIDRs or single addresses.
func parseCIDRs(name, v string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			ip := net.ParseIP(part)
			if ip == nil {
				return nil, &Error{name, fmt.Sprintf("%q is not an IP address or a CIDR such as 10.0.0.0/8", part)}
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return nil, &Error{name, fmt.Sprintf("%q is not a CIDR such as 10.0.0.0/8", part)}
		}
		out = append(out, n)
	}
	return out, nil
}

// parseHosts reads a comma-separated list of host names (with an optional
// port), lowercased.
func parseHosts(name, v string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if part == "" {
			continue
		}
		u, err := url.Parse("http://" + part)
		if err != nil || u.Host != part || u.Path != "" || u.User != nil {
			return nil, &Error{name, fmt.Sprintf("%q is not a host name such as nofx.example.com or nofx.example.com:8443", part)}
		}
		out = append(out, part)
	}
	return out, nil
}
