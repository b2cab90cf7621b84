// Package teams owns teams, their members and the roles members hold.
package teams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // time zones load on systems without a zone database

	"github.com/nofxhq/nofx/internal/db"
)

// Role is what a member (or an API key) may do in a team.
type Role string

// The roles, from most to least powerful.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleViewer Role = "viewer"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleOwner, RoleAdmin, RoleMember, RoleViewer}

// ParseRole returns the role named s, or an error for an unknown name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: use owner, admin, member or viewer", s)
}

// AtLeast reports whether r is as powerful as other or more.
func (r Role) AtLeast(other Role) bool {
	return r.rank() >= other.rank()
}

func (r Role) rank() int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleMember:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Team is a group of users that owns runs, templates and a plan.
type Team struct {
	ID        int64     `db:"id" json:"id"`
	Name      string    `db:"name" json:"name"`
	Slug      string    `db:"slug" json:"slug"`
	Personal  bool      `db:"personal" json:"personal"`
	Plan      string    `db:"plan" json:"plan"`
	TimeZone  string    `db:"time_zone" json:"time_zone"` // an IANA name such as Europe/Paris; schedules run in it
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

// Membership is a team seen by one of its members, with that member's role.
type Membership struct {
	Team
	Role Role `db:"role" json:"role"`
}

// Member is a user in a team, as listed on the team page.
type Member struct {
	UserID   int64     `db:"user_id" json:"user_id"`
	Email    string    `db:"email" json:"email"`
	Name     string    `db:"name" json:"name"`
	Role     Role      `db:"role" json:"role"`
	JoinedAt time.Time `db:"created_at" json:"joined_at"`
}

// columnNames are a team's columns, in the order of Team's fields.
var columnNames = []string{"id", "name", "slug", "personal", "plan", "time_zone", "created_at"}

// teamColumns are a team's columns in queries that name teams t.
var teamColumns = "t." + strings.Join(columnNames, ", t.")

// ColumnsAs are a team's columns in a query that names teams t, named for
// a Team in a struct field tagged db:"field": a team read beside another
// row in one query.
func ColumnsAs(field string) string {
	cols := make([]string, len(columnNames))
	for i, name := range columnNames {
		cols[i] = fmt.Sprintf(`t.%s AS "%s.%s"`, name, field, name)
	}
	return strings.Join(cols, ", ")
}

// Create inserts a team.
func Create(ctx context.Context, q db.Queryer, name, slug string, personal bool) (Team, error) {
	t := Team{Name: name, Slug: slug, Personal: personal, Plan: "free", TimeZone: "UTC", CreatedAt: db.Now()}
	err := db.Get(ctx, q, &t.ID,
		`INSERT INTO teams (name, slug, personal, plan, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		t.Name, t.Slug, t.Personal, t.Plan, t.CreatedAt)
	if err != nil {
		return Team{}, fmt.Errorf("teams: create %q: %w", slug, err)
	}
	return t, nil
}

// AddMember gives userID the role in teamID.
func AddMember(ctx context.Context, q db.Queryer, teamID, userID int64, role Role) error {
	_, err := db.Exec(ctx, q,
		`INSERT INTO memberships (team_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`,
		teamID, userID, role, db.Now())
	if err != nil {
		return fmt.Errorf("teams: add member %d to team %d: %w", userID, teamID, err)
	}
	return nil
}

// CreatePersonal creates the personal team of a new user, named after the
// email address, with the user as its owner.
func CreatePersonal(ctx context.Context, q db.Queryer, userID int64, email string) (Team, error) {
	local, _, _ := strings.Cut(email, "@")
	return createOwned(ctx, q, userID, local+"'s team", Slugify(local), true)
}

// CreateShared creates a team that is not personal, named name, with a free
// slug derived from it and userID as its owner.
func CreateShared(ctx context.Context, q db.Queryer, userID int64, name string) (Team, error) {
	return createOwned(ctx, q, userID, name, Slugify(name), false)
}

// createOwned creates a team with a free slug from slugBase and userID as
// its owner.
func createOwned(ctx context.Context, q db.Queryer, userID int64, name, slugBase string, personal bool) (Team, error) {
	slug, err := freeSlug(ctx, q, slugBase)
	if err != nil {
		return Team{}, err
	}
	t, err := Create(ctx, q, name, slug, personal)
	if err != nil {
		return Team{}, err
	}
	if err := AddMember(ctx, q, t.ID, userID, RoleOwner); err != nil {
		return Team{}, err
	}
	return t, nil
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// Slugify turns a name into a lowercase slug of letters, digits and dashes.
func Slugify(name string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	if s == "" {
		s = "team"
	}
	return s
}

// freeSlug returns base when no team uses it, or base with a random suffix.
func freeSlug(ctx context.Context, q db.Queryer, base string) (string, error) {
	slug := base
	for range 5 {
		var n int
		if err := db.Get(ctx, q, &n, `SELECT COUNT(*) FROM teams WHERE slug = ?`, slug); err != nil {
			return "", fmt.Errorf("teams: check slug: %w", err)
		}
		if n == 0 {
			return slug, nil
		}
		b := make([]byte, 3)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		slug = base + "-" + hex.EncodeToString(b)
	}
	return "", fmt.Errorf("teams: no free slug for %q", base)
}

// ForUser lists the teams userID belongs to, personal team first, then by name.
func ForUser(ctx context.Context, q db.Queryer, userID int64) ([]Membership, error) {
	var ms []Membership
	err := db.Select(ctx, q, &ms, `SELECT `+teamColumns+`, m.role
		FROM teams t JOIN memberships m ON m.team_id = t.id
		WHERE m.user_id = ?
		ORDER BY t.personal DESC, t.name, t.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("teams: list for user %d: %w", userID, err)
	}
	return ms, nil
}

// MembershipOf returns teamID as seen by userID, or db.ErrNotFound when the
// user is not a member.
func MembershipOf(ctx context.Context, q db.Queryer, teamID, userID int64) (Membership, error) {
	var m Membership
	err := db.Get(ctx, q, &m, `SELECT `+teamColumns+`, m.role
		FROM teams t JOIN memberships m ON m.team_id = t.id
		WHERE t.id = ? AND m.user_id = ?`, teamID, userID)
	if err != nil {
		return Membership{}, fmt.Errorf("teams: membership of user %d in team %d: %w", userID, teamID, err)
	}
	return m, nil
}

// ByID returns the team with id.
func ByID(ctx context.Context, q db.Queryer, id int64) (Team, error) {
	var t Team
	if err := db.Get(ctx, q, &t, `SELECT `+teamColumns+` FROM teams t WHERE t.id = ?`, id); err != nil {
		return Team{}, fmt.Errorf("teams: get %d: %w", id, err)
	}
	return t, nil
}

// BySlug returns the team with slug.
func BySlug(ctx context.Context, q db.Queryer, slug string) (Team, error) {
	var t Team
	if err := db.Get(ctx, q, &t, `SELECT `+teamColumns+` FROM teams t WHERE t.slug = ?`, slug); err != nil {
		return Team{}, fmt.Errorf("teams: get %q: %w", slug, err)
	}
	return t, nil
}

// Members lists the members of teamID, owners first.
func Members(ctx context.Context, q db.Queryer, teamID int64) ([]Member, error) {
	var ms []Member
	err := db.Select(ctx, q, &ms, `SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = ?
		ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'member' THEN 2 ELSE 3 END, u.email`, teamID)
	if err != nil {
		return nil, fmt.Errorf("teams: members of %d: %w", teamID, err)
	}
	return ms, nil
}

// ErrUnknownTimeZone is a time zone name the system's zone database lacks.
var ErrUnknownTimeZone = errors.New("teams: unknown time zone")

// SetTimeZone sets the time zone of teamID to tz, an IANA name such as
// Europe/Paris (or UTC), after checking that it loads.
func SetTimeZone(ctx context.Context, q db.Queryer, teamID int64, tz string) error {
	if _, err := LoadLocation(tz); err != nil {
		return err
	}
	if err := db.ExecOne(ctx, q, `UPDATE teams SET time_zone = ? WHERE id = ?`, tz, teamID); err != nil {
		return fmt.Errorf("teams: set time zone of %d: %w", teamID, err)
	}
	return nil
}

// LoadLocation returns the location named tz; an empty name, "Local" or a
// name the zone database lacks is ErrUnknownTimeZone.
func LoadLocation(tz string) (*time.Location, error) {
	if tz == "" || tz == "Local" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTimeZone, tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTimeZone, tz)
	}
	return loc, nil
}
