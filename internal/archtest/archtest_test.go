// Package archtest keeps the architecture honest: the agent never links
// server code (or a SQL driver) and the server never links agent code.
package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tentacle-deploy/tentacle/"

func TestImportBoundaries(t *testing.T) {
	t.Parallel()
	rules := []struct {
		dir       string
		forbidden []string
	}{
		{"agent", []string{module + "server", "modernc.org/sqlite", "github.com/jackc/pgx", "database/sql"}},
		{"server", []string{module + "agent"}},
		{"cmd/tentacle", []string{module + "server", "modernc.org/sqlite", "database/sql"}},
	}
	for _, r := range rules {
		root := filepath.Join("..", "..", r.dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range r.forbidden {
					if p == bad || strings.HasPrefix(p, bad+"/") {
						t.Errorf("%s imports %s: %s/ must not depend on it", path, p, r.dir)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogFieldNames keeps the structured logs searchable with one query per
// object: the target's name is always "target", a task's id "task", a
// deployment's id "deployment" and an application's name "app"
// (docs/OPERATIONS.md). The synonyms below crept in before; this refuses
// them in non-test code.
func TestLogFieldNames(t *testing.T) {
	t.Parallel()
	synonyms := map[string]string{
		"task_id": "task", "taskID": "task", "deployment_id": "deployment", "deploymentID": "deployment",
		"application": "app", "application_name": "app", "target_name": "target", "targetName": "target",
	}
	for _, dir := range []string{"agent", "server", "cmd", "internal"} {
		root := filepath.Join("..", "..", dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "zap" {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				key, _ := strconv.Unquote(lit.Value)
				if want, bad := synonyms[key]; bad {
					t.Errorf("%s: zap.%s(%q, …): use %q, the field name every log uses", path, sel.Sel.Name, key, want)
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
