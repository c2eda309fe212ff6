package bytesize

import "testing"

func TestSI(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 999: "999 B", 1000: "1.0 kB", 1536: "1.5 kB", 5 << 30: "5.4 GB",
		80_300_000_000: "80.3 GB", 1 << 62: "4.6 EB", ^uint64(0): "18.4 EB",
	} {
		if got := SI(n); got != want {
			t.Errorf("SI(%d) = %q, want %q", n, got, want)
		}
	}
}
