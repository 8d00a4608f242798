#!/usr/bin/env bash
# System packages the tests use, installed from Debian only when missing (CI starts from a clean clone
# on a machine that may lack them).
set -euo pipefail
need=()
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || { [ -n "${VDX_TEST_DATABASE_URL:-}" ] || need+=(postgresql); }
command -v git >/dev/null 2>&1 || need+=(git)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need+=(baresip)
dpkg -s baresip-ffmpeg >/dev/null 2>&1 || need+=(baresip-ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)   # spoken IVR prompts (PIN entry)
command -v linphonec >/dev/null 2>&1 || need+=(linphone-cli) # SIP interop: a second softphone
# the web tests drive Debian's Chromium through Playwright (never `playwright install`)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# ... and Debian's Firefox ESR over its own WebDriver BiDi socket (no geckodriver: not packaged)
command -v firefox-esr >/dev/null 2>&1 || need+=(firefox-esr)
# ... and WebKitGTK (Safari's engine) through its WebDriver, MiniBrowser on a private Xvfb display
command -v WebKitWebDriver >/dev/null 2>&1 || need+=(webkit2gtk-driver)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
# TURN: a throwaway coturn relays one WebRTC call (harness/turn.py)
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
# Kamailio in front of the nodes (deploy/kamailio/kamailio.cfg, tests/deploy); its TLS module for
# the configuration's WITH_TLS variant
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
dpkg -s kamailio-tls-modules >/dev/null 2>&1 || need+=(kamailio-tls-modules)
# systemd-analyze verify checks the units of deploy/systemd
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
