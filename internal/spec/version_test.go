package spec

import (
	"slices"
	"testing"
)

func TestCompareVersionsSortsAsPeopleRead(t *testing.T) {
	t.Parallel()
	want := []string{"0.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0", "v1.0.1", "1.2", "1.9.2", "1.10.0", "2.0.0", "latest", "main"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, CompareVersions)
	if !slices.Equal(got, want) {
		t.Fatalf("sorted:\n got  %v\n want %v", got, want)
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.10.0", "1.9.2", 1}, {"v2", "2", 0}, {"1.0.0+build.5", "1.0.0", 0}, {"1.0", "1.0.0", -1},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzCompareVersions(f *testing.F) {
	for _, s := range []string{"1.0.0", "1.10.0-rc.1", "v2+x", "latest", "01.1", ""} {
		f.Add(s, "1.9.2")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba {
			t.Fatalf("not antisymmetric: (%q,%q)=%d, (%q,%q)=%d", a, b, ab, b, a, ba)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("%q is not equal to itself", a)
		}
	})
}
