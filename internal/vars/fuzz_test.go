package vars

import (
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"", "plain", "${A}", "$${A}", "$$${A}", "${", "${}", "${1}", "a${B}c${A}", "$", "}${A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Each reference becomes itself again: a value without "$${"
		// comes back unchanged.
		same := func(n string) (string, bool) { return "${" + n + "}", true }
		got, err := Substitute(s, same)
		if !strings.Contains(s, "$") && (err != nil || got != s) {
			t.Fatalf("Substitute(%q) = %q, %v: a value without $ must be the identity", s, got, err)
		}
		if err == nil && !strings.Contains(s, "$${") && got != s {
			t.Fatalf("Substitute(%q) with references to themselves = %q", s, got)
		}
		_, rerr := References(s)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Substitute(%q) error %v but References error %v", s, err, rerr)
		}
		// Unknown names are reported, never substituted with nothing.
		none := func(string) (string, bool) { return "", false }
		if out, err := Substitute(s, none); err == nil {
			if refs, _ := References(s); len(refs) > 0 {
				t.Fatalf("Substitute(%q) with no names = %q, want an error", s, out)
			}
		}
	})
}

func FuzzResolve(f *testing.F) {
	f.Add("A,B,C", "x,${A},${B}", []byte{0, 1, 2}, "E", "${C}")
	f.Add("A,A", "1,2", []byte{2, 2}, "A", "base")
	f.Add("A,B", "${B},${A}", []byte{0, 0}, "", "")
	f.Add("P,U", "secret,${P}", []byte{8, 4}, "X", "$${P}")
	f.Fuzz(func(t *testing.T, names, values string, scopes []byte, baseName, baseValue string) {
		ns, vals := strings.Split(names, ","), strings.Split(values, ",")
		var vs []Variable
		for i, n := range ns {
			if !spec.ValidEnvName(n) || i >= len(vals) {
				continue
			}
			var b byte
			if i < len(scopes) {
				b = scopes[i]
			}
			sc := Scope{}
			if b&1 != 0 {
				sc.Environment = []string{"prod", "test"}[b>>4&1]
			}
			if b&2 != 0 {
				sc.Role = []string{"web", "edge", "db"}[int(b>>5)%3]
			}
			if b&4 != 0 {
				sc.Target = []string{"web-1", "web-2"}[b>>7&1]
			}
			vs = append(vs, Variable{Name: n, Value: vals[i], Scope: sc, Sensitive: b&8 != 0})
		}
		var base []spec.EnvVar
		if spec.ValidEnvName(baseName) {
			base = append(base, spec.EnvVar{Name: baseName, Value: baseValue})
		}
		env, sensitive, err := Resolve(base, vs, web1)
		if err != nil {
			return
		}
		names2 := map[string]bool{}
		for _, e := range env {
			if names2[e.Name] {
				t.Fatalf("%s set twice in %v", e.Name, env)
			}
			names2[e.Name] = true
		}
		for _, v := range vs {
			if v.Scope.Matches(web1) && !names2[v.Name] {
				t.Fatalf("matching variable %s missing from %v", v.Name, env)
			}
		}
		for _, n := range sensitive {
			if !names2[n] {
				t.Fatalf("sensitive %s is not in the env %v", n, env)
			}
		}
		if !slices.IsSorted(sensitive) {
			t.Fatalf("sensitive names not sorted: %v", sensitive)
		}
	})
}
