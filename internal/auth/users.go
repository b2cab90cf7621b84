package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

// User is a person who signs in to NOFX.
type User struct {
	ID           int64     `db:"id" json:"id"`
	Email        string    `db:"email" json:"email"`
	Name         string    `db:"name" json:"name"`
	PasswordHash string    `db:"password_hash" json:"-"`
	IsSiteAdmin  bool      `db:"is_site_admin" json:"is_site_admin"`
	CreatedAt    time.Time `db:"created_at" json:"created_at"`
	UpdatedAt    time.Time `db:"updated_at" json:"updated_at"`
}

// DisplayName is the user's name, or their email when they gave none.
func (u User) DisplayName() string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

const userColumns = `id, email, name, password_hash, is_site_admin, created_at, updated_at`

func insertUser(ctx context.Context, q db.Queryer, u *User) error {
	err := db.Get(ctx, q, &u.ID, `INSERT INTO users (email, name, password_hash, is_site_admin, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		u.Email, u.Name, u.PasswordHash, u.IsSiteAdmin, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return fmt.Errorf("auth: create user: %w", err)
	}
	return nil
}

// UserByEmail finds a user by email, whatever its letter case.
func UserByEmail(ctx context.Context, q db.Queryer, email string) (User, error) {
	var u User
	if err := db.Get(ctx, q, &u, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower(?)`, email); err != nil {
		return User{}, fmt.Errorf("auth: user by email: %w", err)
	}
	return u, nil
}

// UserByID finds a user by id.
func UserByID(ctx context.Context, q db.Queryer, id int64) (User, error) {
	var u User
	if err := db.Get(ctx, q, &u, `SELECT `+userColumns+` FROM users WHERE id = ?`, id); err != nil {
		return User{}, fmt.Errorf("auth: user %d: %w", id, err)
	}
	return u, nil
}

// CountUsers returns how many users the instance has.
func CountUsers(ctx context.Context, q db.Queryer) (int, error) {
	var n int
	if err := db.Get(ctx, q, &n, `SELECT COUNT(*) FROM users`); err != nil {
		return 0, fmt.Errorf("auth: count users: %w", err)
	}
	return n, nil
}

func updatePasswordHash(ctx context.Context, q db.Queryer, userID int64, hash string) error {
	err := db.ExecOne(ctx, q, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, db.Now(), userID)
	if err != nil {
		return fmt.Errorf("auth: update password of user %d: %w", userID, err)
	}
	return nil
}
