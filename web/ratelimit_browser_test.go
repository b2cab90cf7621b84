package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

// TestBrowserTooManyLogInsShowTheFriendlyPage: wrong passwords until the
// auth tier refuses, which shows a page that says to wait; after the window
// the right password works again.
func TestBrowserTooManyLogInsShowTheFriendlyPage(t *testing.T) {
	t.Parallel()
	a := newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *config.Config) {
		c.RateAuth = config.Rate{N: 3, Per: 6 * time.Second}
	})
	ctx := newBrowserAnswering(t, http.StatusUnauthorized, http.StatusTooManyRequests)
	const email = "grace@example.com"
	a.client().signUp(email, password)

	logIn := func(pw string) error {
		return chromedp.Do(ctx,
			chromedp.Navigate(a.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
			chromedp.SendKeys(chromedp.CSS(`[data-testid=login-form] input[name=email]`), email),
			chromedp.SendKeys(chromedp.CSS(`[data-testid=login-form] input[name=password]`), pw),
			chromedp.Click(chromedp.CSS(`[data-testid=login-form] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form] [data-testid=form-error], [data-testid=error-page], [data-testid=dashboard]`)),
		)
	}
	limitedPage := func() bool {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=error-page]').length`))
		require.NoError(t, err)
		return n > 0
	}

	// The sign-up took one of the email's three tries; wrong passwords take
	// the rest, then the page says to wait.
	for attempt := 0; !limitedPage(); attempt++ {
		require.Less(t, attempt, 10, "ten wrong passwords and still no limit")
		require.NoError(t, logIn("not the password"))
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=error-page]`)))
	require.NoError(t, err)
	require.Contains(t, text, "429")
	require.Contains(t, text, "Too many attempts")
	require.Contains(t, text, "try again")

	// The right password works again once the bucket refills.
	deadline := time.Now().Add(15 * time.Second)
	for {
		require.NoError(t, logIn(password))
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=dashboard]').length`))
		require.NoError(t, err)
		if n > 0 {
			break
		}
		require.True(t, limitedPage(), "while limited, the page says so (not a wrong password)")
		require.True(t, time.Now().Before(deadline), "still refused after the window")
		require.NoError(t, chromedp.Do(ctx, chromedp.Sleep(500*time.Millisecond)))
	}
}
