// Package bytesize writes sizes for people, in one convention everywhere
// (agent messages, server health reasons, tentaclectl): SI units, as
// docker pull and docker system df do.
package bytesize

import "fmt"

// SI is n in B, kB, MB, GB, TB, PB or EB with one decimal, e.g. "80.3 GB".
func SI(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
