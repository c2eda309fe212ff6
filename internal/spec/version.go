package spec

import (
	"strconv"
	"strings"
)

// CompareVersions orders release versions the way people read them:
// dot-separated parts compare numerically when both are numbers
// ("1.10.0" after "1.9.2"), a leading "v" is ignored, a pre-release
// ("1.0.0-rc.1") comes before its release, and build metadata ("+abc") is
// ignored. Anything else falls back to comparing text, so every pair has an
// order. It returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	amain, apre := splitVersion(a)
	bmain, bpre := splitVersion(b)
	if c := compareParts(amain, bmain); c != 0 {
		return c
	}
	switch {
	case apre == "" && bpre == "":
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	return compareParts(apre, bpre)
}

func splitVersion(v string) (main, pre string) {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "v"), "V")
	v, _, _ = strings.Cut(v, "+")
	main, pre, _ = strings.Cut(v, "-")
	return main, pre
}

func compareParts(a, b string) int {
	ap, bp := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(ap) && i < len(bp); i++ {
		if c := comparePart(ap[i], bp[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(ap) < len(bp):
		return -1
	case len(ap) > len(bp):
		return 1
	}
	return 0
}

// comparePart: numbers before words, numbers by value, words by text.
func comparePart(a, b string) int {
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return strings.Compare(a, b) // "01" vs "1": still a total order
	case aerr == nil:
		return -1
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}
