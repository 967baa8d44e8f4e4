#!/usr/bin/env bash
# Install the Debian packages that tests and benchmarks run for real:
# prometheus (a real server scrapes our endpoints) and tshark (a benchmark peer).
# Idempotent; does nothing when they are present or when we cannot install.
set -u
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v ip >/dev/null 2>&1 || need+=(iproute2)  # network namespaces (fault tests)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} (not root or no apt-get); tests needing them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "system-deps: installing ${need[*]}" >&2
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "system-deps: could not install ${need[*]}; tests needing them will skip" >&2
# The Debian package starts a system prometheus on :9090 in some images; ours
# are started by the tests on free ports, so stop it to keep the port free.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
exit 0
