package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browserTimeout bounds a whole browser test: starting Chromium, every
// action and every wait.
const browserTimeout = 60 * time.Second

// chromiumPath returns Debian's Chromium, or "" when it is not installed.
func chromiumPath() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// browserProblems collects what a page reported that a working page never
// does: uncaught exceptions, console errors and browser errors such as
// Content-Security-Policy violations.
type browserProblems struct {
	mu   sync.Mutex
	list []string
	// answers are statuses that the test expects pages to answer with
	// (such as 401 for a wrong password): pages, not problems.
	answers []int
}

// listen records the problems among the events of a tab. It runs in the
// tab's event loop, so it only appends under the lock.
func (p *browserProblems) listen(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		problem = "uncaught exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			problem += " " + d.Exception.Description
		}
		if d.URL != "" {
			problem += " at " + d.URL
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			problem = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		// A 422 is a form shown again with its problems: the page is the
		// answer, and the test checks what it says.
		formShownAgain := e.Source == log.EntrySourceNetwork && strings.Contains(e.Text, "status of 422")
		for _, status := range p.answers {
			formShownAgain = formShownAgain || e.Source == log.EntrySourceNetwork && strings.Contains(e.Text, fmt.Sprintf("status of %d", status))
		}
		if e.Level == log.EntryLevelError && !formShownAgain || strings.Contains(e.Text, "Content Security Policy") {
			problem = "browser log (" + string(e.Source) + ", " + string(e.Level) + "): " + e.Text + " " + e.URL
		}
	}
	if problem == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, problem)
}

func (p *browserProblems) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

// newBrowser starts headless Chromium with a fresh profile and returns the
// context of a tab in it. Every action on that context must finish within
// browserTimeout of the call. When the test ends, the browser stops, and the
// test fails if a page threw an uncaught exception or logged an error, such
// as a Content-Security-Policy violation.
//
// Without Chromium the test is skipped, except on CI (CI=true), where that
// is a failure.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return newBrowserAnswering(t)
}

// newBrowserAnswering is newBrowser for a test whose pages answer with
// these statuses on purpose (401 for a wrong password, 429 when limited).
func newBrowserAnswering(t *testing.T, statuses ...int) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed, and CI=true requires the browser tests")
		}
		t.Skip("chromium is not installed; skipping the browser test")
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1280, 900),
	}
	deadline, cancelDeadline := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(deadline, opts...)
	problems := &browserProblems{answers: statuses}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(problems.listen))
	t.Cleanup(func() {
		// Stop the browser first (cancelAlloc waits for it to exit), so that
		// its profile directory can be removed and every event is in.
		cancelTab()
		cancelAlloc()
		cancelDeadline()
		for _, p := range problems.all() {
			t.Errorf("browser: %s", p)
		}
	})

	// Start the browser and open the tab now, so that a failure to start is
	// reported here rather than by the first action.
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

// TestBrowserSignUpLogOutLogIn signs up, logs out and logs in again in a
// real browser, through the forms and the user menu.
func TestBrowserSignUpLogOutLogIn(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)

	const (
		email    = "ada@example.com"
		password = "correct horse battery"
	)

	// Sign up.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=name]`), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
	), "sign up")
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=flash]`)))
	require.NoError(t, err)
	require.Contains(t, flash, "Welcome to NOFX")
	location, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, a.URL+"/runs", location)

	// Log out through the user menu.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=user-menu] > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logout]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=logout]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
	), "log out")
	flash, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=flash]`)))
	require.NoError(t, err)
	require.Equal(t, "You have been logged out.", strings.TrimSpace(flash))
	location, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, a.URL+"/login", location)

	// Log in again with the same credentials.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-form] input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=login-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
	), "log in")
	menu, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=user-menu]`)))
	require.NoError(t, err)
	require.Contains(t, menu, email, "the user menu shows who is signed in")
}
