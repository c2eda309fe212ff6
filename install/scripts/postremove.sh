#!/bin/sh
# Tentacle package: after removal (deb postrm, rpm %postun).
#   deb: $1 = remove | purge | upgrade | failed-upgrade | abort-install | abort-upgrade | disappear
#   rpm: $1 = 0 when the package is erased, 1 or more on an upgrade
# Only a deb purge deletes the configuration and the data directory (the
# agent's key, certificates and enrollment). rpm has no purge: after
# `rpm -e`, remove /etc/tentacle and /var/lib/tentacle by hand if wanted.
set -eu

case ${1:-} in
purge)
	rm -rf /etc/tentacle /var/lib/tentacle
	;;
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
