#!/bin/sh
# Tentacle package: after install or upgrade (deb postinst, rpm %post).
#   deb: $1 = configure (or abort-upgrade|abort-remove|abort-deconfigure),
#        $2 = the version configured before (empty on a first install)
#   rpm: $1 = 1 on a first install, 2 or more on an upgrade
# Enables the packaged systemd unit when systemd runs; starts it only when
# the host is already enrolled, and on upgrade restarts it only if it runs. Never fails the
# package transaction because of the service: it says what to do instead.
set -eu

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
	echo "tentacle: systemd is not running: the packaged unit was not enabled."
	echo "tentacle: to register the agent with this host's service manager: tentacle install --config $CONFIG"
	if [ ! -f "$ENROLLMENT" ]; then next_steps; fi
	exit 0
fi

# The package ships the unit; enable it so it starts at boot.
systemctl daemon-reload >/dev/null 2>&1 || true
if ! systemctl enable tentacle.service >/dev/null 2>&1; then
	echo "tentacle: warning: could not enable tentacle.service; run: systemctl enable tentacle" >&2
fi

if [ ! -f "$ENROLLMENT" ]; then
	next_steps
	exit 0
fi

if $upgrade; then
	# Restart only if it was running: an agent stopped on purpose stays stopped.
	echo "tentacle: restarting the agent if it runs"
	systemctl try-restart tentacle.service ||
		echo "tentacle: warning: the agent did not restart; see: journalctl -u tentacle" >&2
else
	echo "tentacle: this host is enrolled ($ENROLLMENT): starting the agent"
	systemctl start tentacle.service ||
		echo "tentacle: warning: the agent did not start; see: journalctl -u tentacle" >&2
fi
exit 0
