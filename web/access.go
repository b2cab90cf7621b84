package web

import (
	"net/http"
	"reflect"
	"runtime"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/web/httpx"
)

// Access is who may call a route. It is declared once, where the route is
// registered (routes.go), and enforced by middleware before the handler
// runs; the services check the team's permissions again as a second line.
type Access struct {
	Public    bool              // anyone, signed in or not
	SignedIn  bool              // any signed-in user (or API key, unless UsersOnly)
	UsersOnly bool              // with SignedIn: users only; an API key, which acts inside one team, gets 403
	SiteAdmin bool              // site admins only
	Perm      access.Permission // team members (or keys) whose role grants it
	Scoped    bool              // acts on one team's resource, named in the path: another team's answers 404
}

var (
	public    = Access{Public: true}
	signedIn  = Access{SignedIn: true}
	usersOnly = Access{SignedIn: true, UsersOnly: true}
	siteAdmin = Access{SiteAdmin: true}
)

// teamPerm is a permission in the current team; scopedPerm the same on a
// resource the path names (the handler answers 404 for another team's).
func teamPerm(p access.Permission) Access   { return Access{Perm: p} }
func scopedPerm(p access.Permission) Access { return Access{Perm: p, Scoped: true} }

// String is the access as the route table shows it: "public", "signed in",
// "users only", "site admin", or the permission ("runs:read"), with
// "(scoped)" when another team's resource answers 404.
func (a Access) String() string {
	switch {
	case a.Public:
		return "public"
	case a.SiteAdmin:
		return "site admin"
	case a.UsersOnly:
		return "users only"
	case a.SignedIn:
		return "signed in"
	case a.Scoped:
		return string(a.Perm) + " (scoped)"
	default:
		return string(a.Perm)
	}
}

// enforce returns the middleware that lets through only who a grants. On
// the API side the group has already authenticated the key or session.
func (s *Server) enforce(a Access, api bool) []echo.MiddlewareFunc {
	var m []echo.MiddlewareFunc
	if a.Public {
		return nil
	}
	if !api {
		m = append(m, s.requireUser)
	}
	switch {
	case a.SiteAdmin:
		m = append(m, s.requireSiteAdmin)
	case a.UsersOnly:
		m = append(m, refuseAPIKeys)
	case a.Perm != "":
		m = append(m, requirePerm(a.Perm))
	}
	return m
}

// requirePerm lets through who holds perm in the team they act in.
func requirePerm(perm access.Permission) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			a, err := httpx.Actor(c)
			if err != nil {
				return err
			}
			if err := a.Can(perm); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// refuseAPIKeys refuses API keys: a key acts inside one team, and the route
// acts for a user across teams.
func refuseAPIKeys(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if httpx.Who(c).APIKey != nil {
			return echo.NewHTTPError(http.StatusForbidden, "API keys act inside one team and cannot do this. Sign in as a user.")
		}
		return next(c)
	}
}

// Route is one registered route and who may call it.
type Route struct {
	Method string
	Path   string
	// Handler names the function that answers, as a reader finds it:
	// "pages.RunsPage" is the method RunsPage in web/pages, "api.ListRuns"
	// one in web/api, "web.healthz" one of the server's own.
	Handler string
	Access  Access
}

// RouteTable lists every route with its access, in the order routes.go
// registers them.
func (s *Server) RouteTable() []Route { return s.table }

// routeSet registers routes on one side of the server, the pages or the API
// group, each with its access.
type routeSet struct {
	s      *Server
	add    func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
	prefix string
	api    bool
}

// handle registers one route: the access check first, then m, then h.
func (r routeSet) handle(method, path string, a Access, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	if a == (Access{}) {
		panic("web: " + method + " " + r.prefix + path + " declares no access")
	}
	r.add(method, path, h, append(r.s.enforce(a, r.api), m...)...)
	r.s.table = append(r.s.table, Route{Method: method, Path: r.prefix + path, Handler: handlerName(h), Access: a})
}

func (r routeSet) get(path string, a Access, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.handle(http.MethodGet, path, a, h, m...)
}

func (r routeSet) post(path string, a Access, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.handle(http.MethodPost, path, a, h, m...)
}

func (r routeSet) put(path string, a Access, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.handle(http.MethodPut, path, a, h, m...)
}

func (r routeSet) delete(path string, a Access, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.handle(http.MethodDelete, path, a, h, m...)
}

// handlerName shortens a handler's function name to the package and the
// function or method: "github.com/nofxhq/nofx/web/pages.(*Pages).RunsPage-fm"
// becomes "pages.RunsPage", and a closure is named for the function that
// made it.
func handlerName(h echo.HandlerFunc) string {
	name := runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
	name = name[strings.LastIndex(name, "/")+1:]
	name = strings.TrimSuffix(name, "-fm")
	if pkg, rest, ok := strings.Cut(name, "."); ok {
		if strings.HasPrefix(rest, "(") {
			_, rest, _ = strings.Cut(rest, ").")
		}
		rest, _, _ = strings.Cut(rest, ".func")
		name = pkg + "." + rest
	}
	return name
}
