package pages

import (
	"cmp"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/account"
	authviews "github.com/nofxhq/nofx/views/auth"
	"github.com/nofxhq/nofx/web/httpx"
)

// Home sends signed-in users to their runs and others to log in.
func (s *Pages) Home(c echo.Context) error {
	if httpx.Who(c).User != nil {
		return c.Redirect(http.StatusSeeOther, "/runs")
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Pages) SignupPage(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if httpx.Who(c).User != nil {
		return c.Redirect(http.StatusSeeOther, cmp.Or(next, "/runs"))
	}
	if err := s.signupAllowed(c, next); err != nil {
		return err
	}
	form := authviews.SignupForm{Next: next, Email: strings.TrimSpace(c.QueryParam("email")), MinLength: auth.MinPasswordLen} // an invitation fills in its email
	return s.Render(c, http.StatusOK, Page{Title: "Sign up", Content: authviews.Signup(form)})
}

// signupAllowed applies NOFX_SIGNUP: open lets anyone sign up; invite only
// someone with a live invitation (the sign-up's next step is its page), or
// the first account of an empty instance; closed nobody (accounts are made
// with nofx users create).
func (s *Pages) signupAllowed(c echo.Context, next string) error {
	switch s.cfg.Signup {
	case config.SignupClosed:
		return echo.NewHTTPError(http.StatusForbidden, "Sign-ups are closed on this instance. Ask its operator for an account.")
	case config.SignupInvite:
		ctx := c.Request().Context()
		if token, ok := strings.CutPrefix(next, "/invites/"); ok && token != "" && !strings.Contains(token, "/") {
			if _, err := s.invites.Lookup(ctx, token); err == nil {
				return nil
			}
		}
		n, err := s.auth.CountUsers(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return echo.NewHTTPError(http.StatusForbidden, "Sign-ups on this instance are by invitation. Open the link in your invitation email to create your account.")
		}
	}
	return nil
}

func (s *Pages) Signup(c echo.Context) error {
	form := authviews.SignupForm{Next: safeNext(c.FormValue("next")), Name: c.FormValue("name"), Email: c.FormValue("email"), MinLength: auth.MinPasswordLen}
	if err := s.signupAllowed(c, form.Next); err != nil {
		return err
	}
	ctx := c.Request().Context()
	user, _, err := s.auth.SignUp(ctx, auth.SignUp{Email: form.Email, Name: form.Name, Password: c.FormValue("password")})
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		form.Errors = verrs
		return s.Render(c, http.StatusUnprocessableEntity, Page{Title: "Sign up", Content: authviews.Signup(form)})
	}
	if err != nil {
		return err
	}
	if err := s.startSession(c, user.ID); err != nil {
		return err
	}
	s.log.Info("user signed up", "user_id", user.ID, "site_admin", user.IsSiteAdmin)
	s.addFlash(c, "success", "Welcome to NOFX! Your personal team is ready.")
	return redirect(c, cmp.Or(form.Next, "/runs"))
}

func (s *Pages) LoginPage(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if httpx.Who(c).User != nil {
		return c.Redirect(http.StatusSeeOther, cmp.Or(next, "/runs"))
	}
	form := authviews.LoginForm{Next: next, Email: strings.TrimSpace(c.QueryParam("email")), SignupClosed: s.cfg.Signup == config.SignupClosed}
	return s.Render(c, http.StatusOK, Page{Title: "Log in", Content: authviews.Login(form)})
}

func (s *Pages) Login(c echo.Context) error {
	form := authviews.LoginForm{Email: strings.TrimSpace(c.FormValue("email")), Next: safeNext(c.FormValue("next")), SignupClosed: s.cfg.Signup == config.SignupClosed}
	user, err := s.auth.Authenticate(c.Request().Context(), form.Email, c.FormValue("password"))
	if errors.Is(err, auth.ErrInvalidCredentials) {
		s.log.Warn("failed log-in", "ip", c.RealIP())
		form.Error = "Wrong email or password."
		return s.Render(c, http.StatusUnauthorized, Page{Title: "Log in", Content: authviews.Login(form)})
	}
	if err != nil {
		return err
	}
	if err := s.startSession(c, user.ID); err != nil {
		return err
	}
	return redirect(c, cmp.Or(form.Next, "/runs"))
}

// startSession signs userID in, replacing any session the browser had.
func (s *Pages) startSession(c echo.Context, userID int64) error {
	token, err := s.auth.StartSession(c.Request().Context(), userID, httpx.Who(c).SessionToken, c.RealIP(), c.Request().UserAgent())
	if err != nil {
		return err
	}
	s.cookies.SetSession(c, token)
	return nil
}

func (s *Pages) Logout(c echo.Context) error {
	if p := httpx.Who(c); p.SessionToken != "" {
		if err := s.auth.EndSession(c.Request().Context(), p.User.ID, p.SessionToken); err != nil {
			return err
		}
	}
	s.cookies.ClearSession(c)
	s.addFlash(c, "info", "You have been logged out.")
	return redirect(c, "/login")
}

func (s *Pages) AccountPage(c echo.Context) error {
	u := httpx.Who(c).User
	return s.Render(c, http.StatusOK, Page{Title: "Account", Nav: "account",
		Content: account.Page(account.Data{Email: u.Email, Name: u.Name, MinLength: auth.MinPasswordLen})})
}

// UpdateProfile changes the user's name and email; problems come back next
// to their fields with what was typed.
func (s *Pages) UpdateProfile(c echo.Context) error {
	p := httpx.Who(c)
	in := auth.Profile{Name: c.FormValue("name"), Email: c.FormValue("email"), CurrentPassword: c.FormValue("current_password"), KeepToken: p.SessionToken}
	saved, err := s.auth.UpdateProfile(c.Request().Context(), p.User.ID, in)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.Render(c, http.StatusUnprocessableEntity, Page{Title: "Account", Nav: "account",
			Content: account.Page(account.Data{Email: in.Email, Name: in.Name, Form: "profile", Errors: verrs, MinLength: auth.MinPasswordLen})})
	}
	if err != nil {
		return err
	}
	msg := "Your profile is saved."
	if saved.Email != p.User.Email {
		msg = "Your profile is saved. You now sign in as " + saved.Email + "; your other sessions were signed out."
	}
	s.addFlash(c, "success", msg)
	return redirect(c, "/account")
}

func (s *Pages) ChangePassword(c echo.Context) error {
	p := httpx.Who(c)
	err := s.auth.ChangePassword(c.Request().Context(), p.User.ID, p.SessionToken, c.FormValue("current_password"), c.FormValue("new_password"))
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.Render(c, http.StatusUnprocessableEntity, Page{Title: "Account", Nav: "account",
			Content: account.Page(account.Data{Email: p.User.Email, Name: p.User.Name, Form: "password", Errors: verrs, MinLength: auth.MinPasswordLen})})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "Your password has been changed. Other sessions were signed out.")
	return redirect(c, "/account")
}

func (s *Pages) SwitchTeam(c echo.Context) error {
	p := httpx.Who(c)
	teamID, err := httpx.FormInt64(c, "team_id")
	if err != nil {
		return err
	}
	err = s.auth.SwitchTeam(c.Request().Context(), p.SessionToken, p.User.ID, teamID)
	if errors.Is(err, db.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "That team does not exist or you are not a member.")
	}
	if err != nil {
		return err
	}
	return redirect(c, cmp.Or(safeNext(c.FormValue("next")), "/runs")) // back to what asked for the switch
}
