#!/bin/sh
# Tentacle package: before removal (deb prerm, rpm %preun).
#   deb: $1 = remove | upgrade | failed-upgrade | deconfigure
#   rpm: $1 = 0 when the package is erased, 1 or more on an upgrade
# Stops and disables the service on removal only: an upgrade keeps it
# (the new package's postinstall restarts it if it was running).
set -eu

TENTACLE=/usr/bin/tentacle

case ${1:-} in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	# The unit is the package's: disable and stop it; dpkg/rpm remove the file.
	systemctl disable --now tentacle.service >/dev/null 2>&1 || true
	exit 0
fi

# Without systemd the agent may have been registered with `tentacle install`
# (SysV, OpenRC): unregister it. Not running or not registered is fine.
[ -x "$TENTACLE" ] || exit 0
"$TENTACLE" stop >/dev/null 2>&1 || true
"$TENTACLE" uninstall >/dev/null 2>&1 || true
exit 0
