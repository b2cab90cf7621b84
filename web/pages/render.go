package pages

import (
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/views/components"
	"github.com/nofxhq/nofx/views/layouts"
	"github.com/nofxhq/nofx/web/httpx"
)

// Page is a screen to render inside the layout.
type Page struct {
	Title   string
	Nav     string
	Content templ.Component
}

// Render writes p with status: the whole document normally, or only the
// content for an htmx request that is not boosted.
func (s *Pages) Render(c echo.Context, status int, p Page) error {
	req := c.Request()
	ctx := components.WithCSRF(req.Context(), httpx.CSRFToken(c))
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().Header().Set("Cache-Control", "no-store")

	if req.Header.Get("HX-Request") == "true" && req.Header.Get("HX-Boosted") != "true" {
		c.Response().WriteHeader(status)
		return p.Content.Render(ctx, c.Response())
	}

	layout := s.layout(c, p)
	c.Response().WriteHeader(status)
	return layouts.Base(layout).Render(templ.WithChildren(ctx, p.Content), c.Response())
}

// layout gathers what the shell shows around a page. It reads (and so
// consumes) the flash messages. It cannot fail: without the database (say,
// on a 500 page) the shell shows no team switcher.
func (s *Pages) layout(c echo.Context, p Page) layouts.Page {
	l := layouts.Page{Title: p.Title, Nav: p.Nav, CSRF: httpx.CSRFToken(c), MaxBody: s.maxBody}
	pr := httpx.Who(c)
	if pr.User != nil {
		l.User = &layouts.User{Name: pr.User.Name, Email: pr.User.Email, IsSiteAdmin: pr.User.IsSiteAdmin}
		memberships, err := s.members.ForUser(c.Request().Context(), pr.User.ID)
		if err != nil {
			s.log.Warn("layout: list teams", "error", err)
		}
		for _, m := range memberships {
			l.Teams = append(l.Teams, layouts.Team{ID: m.ID, Name: m.Name, Current: pr.Team != nil && pr.Team.ID == m.ID})
		}
		if pr.Team != nil {
			warnings, err := s.billing.Warnings(c.Request().Context(), pr.Team.ID)
			if err != nil {
				s.log.Warn("layout: usage warnings", "error", err)
			}
			for _, w := range warnings {
				l.Warnings = append(l.Warnings, w.Message())
			}
		}
	}
	l.Flashes = s.takeFlashes(c)
	return l
}

const flashSession = "nofx_flash"

// addFlash keeps a message to show on the next page rendered.
func (s *Pages) addFlash(c echo.Context, kind, message string) {
	sess, _ := s.flash.Get(c.Request(), s.cookies.Name(c, flashSession)) // a bad cookie gives a new session
	sess.Options.Secure = s.cookies.Secure(c)
	sess.AddFlash(kind + "|" + message)
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		s.log.Warn("save flash", "error", err)
	}
}

func (s *Pages) takeFlashes(c echo.Context) []layouts.Flash {
	if _, err := c.Cookie(s.cookies.Name(c, flashSession)); err != nil {
		return nil
	}
	sess, _ := s.flash.Get(c.Request(), s.cookies.Name(c, flashSession))
	raw := sess.Flashes()
	sess.Options.Secure = s.cookies.Secure(c)
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		s.log.Warn("clear flash", "error", err)
	}
	var out []layouts.Flash
	for _, f := range raw {
		str, ok := f.(string)
		if !ok {
			continue
		}
		kind, msg, _ := strings.Cut(str, "|")
		out = append(out, layouts.Flash{Kind: kind, Message: msg})
	}
	return out
}

// redirect sends the browser to path after a form post (303 See Other).
func redirect(c echo.Context, path string) error {
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", path)
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, path)
}
