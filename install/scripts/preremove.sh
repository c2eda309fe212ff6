#!/bin/sh
# Tentacle package: before removal (deb prerm, rpm %preun).
#   deb: $1 = remove | upgrade | failed-upgrade | deconfigure
#   rpm: $1 = 0 when the package is erased, 1 or more on an upgrade
# Stops and unregisters the service on removal only: an upgrade keeps it
# (the new package's postinstall restarts it).
set -eu

TENTACLE=/usr/bin/tentacle

case ${1:-} in
remove | 0) ;;
*) exit 0 ;;
esac

[ -x "$TENTACLE" ] || exit 0

# Not running or not registered (e.g. no systemd) is fine.
"$TENTACLE" stop >/dev/null 2>&1 || true
if ! out=$("$TENTACLE" uninstall 2>&1); then
	case $out in
	*"not installed"* | *"not exist"*) ;;
	*) echo "tentacle: warning: unregistering the service failed: $out" >&2 ;;
	esac
fi
exit 0
