// Package layouts holds the page shells every screen renders inside.
package layouts

// Page is what the shell needs around a screen's content.
type Page struct {
	Title   string
	Nav     string // the active section: runs, templates, deployments, team, billing, admin, account
	CSRF    string
	User    *User // nil when nobody is signed in
	Teams   []Team
	Flashes []Flash
	// Warnings are the current team's usage warnings this period: one
	// banner on every page.
	Warnings []string
	// MaxBody is the largest request the instance accepts (NOFX_MAX_BODY),
	// in bytes: app.js keeps a bigger form from being sent and losing its
	// text, and says so beside the field that is too long.
	MaxBody int64
}

// User is the signed-in person, as the shell shows them.
type User struct {
	Name        string
	Email       string
	IsSiteAdmin bool
}

// Team is one entry of the team switcher.
type Team struct {
	ID      int64
	Name    string
	Current bool
}

// Flash is a one-time message shown after a redirect.
type Flash struct {
	Kind    string // success, info or error
	Message string
}

// CurrentTeam returns the name of the team the user is working in.
func (p Page) CurrentTeam() string {
	for _, t := range p.Teams {
		if t.Current {
			return t.Name
		}
	}
	return ""
}

type navItem struct {
	key, label, href string
}

func (p Page) navItems() []navItem {
	items := []navItem{
		{"runs", "Runs", "/runs"},
		{"templates", "Templates", "/templates"},
		{"deployments", "Deployments", "/deployments"},
		{"team", "Team", "/team"},
		{"billing", "Billing", "/billing"},
	}
	if p.User != nil && p.User.IsSiteAdmin {
		items = append(items, navItem{"admin", "Admin", "/admin"})
	}
	return items
}

func (p Page) htmxHeaders() string {
	return `{"X-CSRF-Token":"` + p.CSRF + `"}`
}
