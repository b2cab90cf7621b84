package app_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/nofxhq/nofx/"

// TestLayering keeps the layers README.md's Layout section describes: the
// domain never imports the edge, and the edge's three parts (the server
// core, the pages and the JSON API) import each other only downwards.
func TestLayering(t *testing.T) {
	t.Parallel()
	imports := packageImports(t, "../..")
	require.Contains(t, imports, "web/pages", "the walk found the packages")

	for pkg, deps := range imports {
		for _, dep := range deps {
			var why string
			switch {
			case strings.HasPrefix(pkg, "internal/") && pkg != "internal/app" && (under(dep, "web") || under(dep, "views")):
				why = "the domain never imports the edge; internal/app alone puts them together"
			case under(pkg, "views") && under(dep, "web"):
				why = "views render what they are given; they do not reach into the HTTP edge"
			case (under(pkg, "web/pages") || under(pkg, "web/api") || under(pkg, "web/httpx") || under(pkg, "web/form")) && dep == "web":
				why = "the server core imports the pages and the API, not the other way round"
			case under(pkg, "web/api") && (under(dep, "views") || dep == "web/pages"):
				why = "the JSON API answers in JSON: no views, no pages"
			case under(pkg, "web/pages") && dep == "web/api":
				why = "the pages and the API each call the services, not each other"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, why)
			}
		}
	}
}

// TestHandlersGoThroughServices keeps the one way from a handler to the
// domain: the pages and the JSON API hold no database handle, so every
// read and change goes through a service, which checks the actor.
func TestHandlersGoThroughServices(t *testing.T) {
	t.Parallel()
	// The types of a database handle, by the path of their package.
	handles := map[string][]string{
		module + "internal/db":            {"DB", "Queryer"},
		"database/sql":                    {"DB", "Tx", "Conn"},
		"github.com/jmoiron/sqlx":         {"DB", "Tx", "Conn", "Ext", "Queryer", "Execer"},
		"github.com/jackc/pgx/v5":         {"Conn", "Tx"},
		"github.com/jackc/pgx/v5/pgxpool": {"Pool"},
	}
	for _, dir := range []string{"../../web/pages", "../../web/api"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			// Each import's name in this file, as it may be renamed.
			named := map[string]string{}
			for _, imp := range f.Imports {
				importPath := strings.Trim(imp.Path.Value, `"`)
				name := importPath[strings.LastIndex(importPath, "/")+1:]
				if importPath == "github.com/jackc/pgx/v5" {
					name = "pgx"
				}
				if imp.Name != nil {
					name = imp.Name.Name
				}
				named[name] = importPath
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				if types, ok := handles[named[pkg.Name]]; ok && slices.Contains(types, sel.Sel.Name) {
					t.Errorf("%s uses %s.%s: read and change through a service instead", path, named[pkg.Name], sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// under reports whether pkg is dir or a package inside it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// packageImports reads every package under root, without its tests, and
// the NOFX packages it imports, both relative to the module.
func packageImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.Default.ImportDir(path, 0)
		if _, none := err.(*build.NoGoError); none {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		var deps []string
		for _, imp := range p.Imports {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				deps = append(deps, dep)
			}
		}
		slices.Sort(deps)
		out[filepath.ToSlash(rel)] = deps
		return nil
	})
	require.NoError(t, err)
	return out
}
