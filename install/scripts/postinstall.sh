#!/bin/sh
# Tentacle package: after install or upgrade (deb postinst, rpm %post).
#   deb: $1 = configure (or abort-upgrade|abort-remove|abort-deconfigure),
#        $2 = the version configured before (empty on a first install)
#   rpm: $1 = 1 on a first install, 2 or more on an upgrade
# Registers the systemd service when systemd runs; starts (or, on upgrade,
# restarts) it only when the host is already enrolled. Never fails the
# package transaction because of the service: it says what to do instead.
set -eu

TENTACLE=/usr/bin/tentacle
CONFIG=/etc/tentacle/agent.yaml
ENROLLMENT=/var/lib/tentacle/enrollment.json

upgrade=false
case ${1:-} in
configure)
	if [ -n "${2:-}" ]; then upgrade=true; fi
	;;
[0-9]*)
	if [ "$1" -ge 2 ]; then upgrade=true; fi
	;;
esac

next_steps() {
	cat <<MSG
Tentacle agent installed. Next steps:
  1. create a join token (on your workstation):
       tentaclectl token create --env ENVIRONMENT
  2. enroll this host:
       tentacle enroll --config $CONFIG --server HOST:8443 --token TNT1...
  3. start the agent:
       tentacle start
MSG
}

if [ ! -d /run/systemd/system ]; then
	echo "tentacle: systemd is not running: the service was not registered."
	echo "tentacle: to register it with this host's service manager: tentacle install --config $CONFIG"
	if [ ! -f "$ENROLLMENT" ]; then next_steps; fi
	exit 0
fi

# Idempotent: on an upgrade or a reinstall the service exists already.
if ! out=$("$TENTACLE" install --config "$CONFIG" 2>&1); then
	case $out in
	*[Aa]lready*) ;;
	*)
		echo "tentacle: warning: registering the service failed: $out" >&2
		echo "tentacle: fix the cause, then run: tentacle install --config $CONFIG" >&2
		exit 0
		;;
	esac
fi

if [ ! -f "$ENROLLMENT" ]; then
	next_steps
	exit 0
fi

if $upgrade; then
	echo "tentacle: restarting the agent"
	"$TENTACLE" restart || "$TENTACLE" start ||
		echo "tentacle: warning: the agent did not restart; see: journalctl -u tentacle" >&2
else
	echo "tentacle: this host is enrolled ($ENROLLMENT): starting the agent"
	"$TENTACLE" start ||
		echo "tentacle: warning: the agent did not start; see: journalctl -u tentacle" >&2
fi
exit 0
