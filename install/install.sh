#!/bin/sh
# Installs the Tentacle agent on a Linux host, enrolls it and starts it.
# Run as root:
#   install.sh --server HOST:PORT --token TOKEN [--package FILE.deb|FILE.rpm | --binary PATH] [--force]
# See docs/INSTALL.md.
set -eu

CONFIG=/etc/tentacle/agent.yaml

usage() {
	cat <<'USAGE'
Usage: install.sh --server HOST:PORT --token TOKEN [--package FILE.deb|FILE.rpm | --binary PATH] [--force]

Installs the Tentacle agent, registers its service, enrolls this host with the
server and starts the agent. Run as root.

  --server HOST:PORT   the Tentacle server, as agents reach it (e.g. tentacle.example.com:8443)
  --token TOKEN        a join token from `tentaclectl token create --env ENV`
  --package FILE       install a .deb (dpkg) or .rpm (rpm) package: /usr/bin/tentacle
  --binary PATH        copy a tentacle binary to /usr/local/bin/tentacle instead
  --force              re-enroll even if this host is already enrolled
  -h, --help           show this help

Exactly one of --package and --binary is required. The agent's config is
/etc/tentacle/agent.yaml (created with defaults if missing), its data
/var/lib/tentacle.

Example:
  sudo sh install.sh --server tentacle.example.com:8443 --token TNT1.... \
      --package tentacle_1.2.0_amd64.deb
USAGE
}

die() {
	echo "install.sh: error: $*" >&2
	exit 1
}

usage_error() {
	echo "install.sh: $*" >&2
	echo "Run 'install.sh --help' for usage." >&2
	exit 2
}

server='' token='' package='' binary='' force=''
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--server | --token | --package | --binary)
		if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
		case $1 in
		--server) server=$2 ;;
		--token) token=$2 ;;
		--package) package=$2 ;;
		--binary) binary=$2 ;;
		esac
		shift 2
		;;
	--server=* | --token=* | --package=* | --binary=*)
		value=${1#*=}
		[ -n "$value" ] || usage_error "${1%%=*} needs a value"
		case $1 in
		--server=*) server=$value ;;
		--token=*) token=$value ;;
		--package=*) package=$value ;;
		--binary=*) binary=$value ;;
		esac
		shift
		;;
	--force) force=--force; shift ;;
	*) usage_error "unknown argument: $1" ;;
	esac
done

[ -n "$server" ] || usage_error "--server HOST:PORT is required"
[ -n "$token" ] || usage_error "--token TOKEN is required"
if [ -n "$package" ] && [ -n "$binary" ]; then
	usage_error "give either --package or --binary, not both"
fi
[ -n "$package$binary" ] || usage_error "one of --package FILE.deb|FILE.rpm or --binary PATH is required"
[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo sh $0 ...)"

# register_service runs `tentacle install`; "already installed" is fine.
register_service() {
	if ! out=$("$tentacle" install --config "$CONFIG" 2>&1); then
		case $out in
		*[Aa]lready*) echo "service already registered" ;;
		*) die "registering the service failed: $out" ;;
		esac
	fi
}

if [ -n "$package" ]; then
	[ -f "$package" ] || die "package not found: $package"
	case $package in
	*.deb)
		command -v dpkg >/dev/null 2>&1 || die "dpkg not found: is this a Debian-based system? Use the .rpm or --binary"
		echo "==> installing $package (dpkg)"
		dpkg -i "$package" || die "dpkg -i $package failed"
		;;
	*.rpm)
		command -v rpm >/dev/null 2>&1 || die "rpm not found: is this an RPM-based system? Use the .deb or --binary"
		echo "==> installing $package (rpm)"
		# -U installs or upgrades; --replacepkgs allows the same version again.
		rpm -Uvh --replacepkgs "$package" || die "rpm -U $package failed"
		;;
	*) die "unknown package type: $package (expected a .deb or .rpm file)" ;;
	esac
	tentacle=/usr/bin/tentacle
	[ -x "$tentacle" ] || die "$tentacle is missing after installing $package"
	# The package registers the service when systemd runs; make sure for any other init system.
	register_service
else
	[ -f "$binary" ] || die "binary not found: $binary"
	tentacle=/usr/local/bin/tentacle
	echo "==> installing $binary as $tentacle"
	install -m 0755 "$binary" "$tentacle.new" || die "could not copy $binary to $tentacle.new"
	mv -f "$tentacle.new" "$tentacle" || die "could not replace $tentacle"
	"$tentacle" version >/dev/null 2>&1 || die "$tentacle does not run on this host (wrong architecture?)"
	# --config names the file explicitly, so it must exist: write the defaults.
	if [ ! -f "$CONFIG" ]; then
		mkdir -p "$(dirname "$CONFIG")"
		(
			umask 027
			cat >"$CONFIG" <<'CFG'
# Tentacle agent configuration; see docs/CONFIGURATION.md. All settings are
# optional and unknown keys are errors. Run `tentacle restart` after editing.
# registries:
#   - registry: registry.example.com:5000
#     username: deploy
#     password_file: /etc/tentacle/registry-password
# log:
#   format: json
#   level: info
CFG
		)
		echo "wrote $CONFIG"
	fi
	echo "==> registering the service"
	register_service
fi

echo "==> enrolling with $server"
# shellcheck disable=SC2086 # $force is empty or --force
"$tentacle" enroll --config "$CONFIG" --server "$server" --token "$token" $force ||
	die "enrollment failed (an enrolled host needs --force to enroll again)"

echo "==> starting the agent"
"$tentacle" start || die "the agent did not start; see: journalctl -u tentacle"

echo "==> status"
"$tentacle" status
