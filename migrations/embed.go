// Package migrations holds NOFX's SQL migrations, one folder per dialect,
// embedded into the binary.
package migrations

import "embed"

// FS holds postgres/NNNNN_name.sql and sqlite/NNNNN_name.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
