#!/bin/sh
# Turns a `git describe --tags --always --dirty` string into a package
# version: pkgversion.sh deb|rpm DESCRIBE. Used by `make packages`.
#
#   v1.2.3                 -> 1.2.3
#   v1.2.3-rc.1            -> 1.2.3~rc.1                 (sorts before 1.2.3)
#   v1.2.3-4-g861bcb7      -> 1.2.3+git4.861bcb7         (sorts after 1.2.3)
#   861bcb7 (no tag)       -> 0.0.0~git861bcb7
#   ...-dirty              -> ... .dirty appended
#   anything else          -> 0.0.0~ plus the string, sanitized
#
# deb allows [A-Za-z0-9.+~] in a version without a revision; rpm allows
# [A-Za-z0-9._+~] (~ needs rpm >= 4.10). Other characters become dots.
set -eu

usage() { echo "usage: $0 deb|rpm GIT_DESCRIBE" >&2; exit 2; }
[ $# -eq 2 ] || usage
format=$1
d=$2
case $format in deb|rpm) ;; *) usage ;; esac

dirty=
case $d in *-dirty) dirty=.dirty; d=${d%-dirty} ;; esac
d=${d#v}

if printf '%s\n' "$d" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+$'; then
	v=$d
elif printf '%s\n' "$d" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+-g[0-9a-f]+$'; then
	# vX.Y.Z-N-gSHA, possibly after a prerelease: see the next case.
	v=$(printf '%s\n' "$d" | sed -E 's/^([0-9.]+)-([0-9]+)-g([0-9a-f]+)$/\1+git\2.\3/')
elif printf '%s\n' "$d" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+-'; then
	# prerelease, possibly followed by -N-gSHA
	v=$(printf '%s\n' "$d" | sed -E 's/^([0-9.]+)-(.*)-([0-9]+)-g([0-9a-f]+)$/\1~\2+git\3.\4/; t; s/^([0-9.]+)-(.*)$/\1~\2/')
elif printf '%s\n' "$d" | grep -Eq '^[0-9a-f]{4,40}$'; then
	v=0.0.0~git$d
else
	v=0.0.0~$d
fi
v=$v$dirty

# Whatever is left outside the allowed set (e.g. "-" or "/" in a tag) becomes a dot.
if [ "$format" = deb ]; then
	v=$(printf '%s\n' "$v" | sed -E 's/[^A-Za-z0-9.+~]/./g')
else
	v=$(printf '%s\n' "$v" | sed -E 's/[^A-Za-z0-9._+~]/./g')
fi
printf '%s\n' "$v"
