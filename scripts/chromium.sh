#!/usr/bin/env bash
# Debian's Chromium for the web UI's browser tests (tests/ui), which Playwright drives as
# an executable: Playwright's own browser downloads are never used.
#
#   scripts/chromium.sh install   apt-get install chromium if it is missing (as root)
#   scripts/chromium.sh path      print the executable's path, or fail if there is none
set -euo pipefail

CHROMIUM=${NEFOS_CHROMIUM:-/usr/bin/chromium}

case "${1:-}" in
install)
	if [ -x "$CHROMIUM" ]; then
		exit 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "chromium is missing; as root: apt-get install -y chromium" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	;;
path)
	[ -x "$CHROMIUM" ] || { echo "no chromium at $CHROMIUM (scripts/chromium.sh install)" >&2; exit 1; }
	echo "$CHROMIUM"
	;;
*)
	echo "usage: $0 install|path" >&2
	exit 2
	;;
esac
