// Package archtest keeps the architecture honest: the agent never links
// server code (or a SQL driver) and the server never links agent code.
package archtest

import (
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
