package vars

import (
	"fmt"
	"strings"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// segment is a piece of a value: literal text, or a ${NAME} reference.
type segment struct {
	lit string
	ref string // set for a reference
}

// parse splits a value into literal text and ${NAME} references. "$${" is a
// literal "${"; any other "$" is itself.
func parse(value string) ([]segment, error) {
	var segs []segment
	var lit strings.Builder
	for i := 0; i < len(value); {
		switch {
		case strings.HasPrefix(value[i:], "$${"):
			lit.WriteString("${")
			i += 3
		case strings.HasPrefix(value[i:], "${"):
			end := strings.IndexByte(value[i+2:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unterminated %q at byte %d: close it with }, or write $${ for a literal ${", "${", i)
			}
			name := value[i+2 : i+2+end]
			if !spec.ValidEnvName(name) {
				return nil, fmt.Errorf("invalid reference ${%s}: use a variable name (letters, digits and _, not starting with a digit), or write $${ for a literal ${", name)
			}
			if lit.Len() > 0 {
				segs = append(segs, segment{lit: lit.String()})
				lit.Reset()
			}
			segs = append(segs, segment{ref: name})
			i += 2 + end + 1
		default:
			lit.WriteByte(value[i])
			i++
		}
	}
	if lit.Len() > 0 {
		segs = append(segs, segment{lit: lit.String()})
	}
	return segs, nil
}

// References returns the names a value refers to with ${NAME}, in order of
// appearance and once each, or an error for a malformed reference.
func References(value string) ([]string, error) {
	segs, err := parse(value)
	if err != nil {
		return nil, err
	}
	var refs []string
	seen := map[string]bool{}
	for _, s := range segs {
		if s.ref != "" && !seen[s.ref] {
			seen[s.ref] = true
			refs = append(refs, s.ref)
		}
	}
	return refs, nil
}

// Substitute replaces each ${NAME} in value with lookup(NAME), once (the
// looked-up text is not substituted again), and "$${" with "${". A name
// lookup does not know is an error naming the reference.
func Substitute(value string, lookup func(name string) (string, bool)) (string, error) {
	if !strings.Contains(value, "$") {
		return value, nil
	}
	segs, err := parse(value)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, s := range segs {
		if s.ref == "" {
			b.WriteString(s.lit)
			continue
		}
		v, ok := lookup(s.ref)
		if !ok {
			return "", unknownRef(s.ref)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func unknownRef(name string) error {
	return fmt.Errorf("${%s} names no variable or env entry: define %s, or write $${%s} for a literal ${%s}", name, name, name, name)
}
