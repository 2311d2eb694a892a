#!/usr/bin/env bash
# make demo: two simulated WANs, mwand failing over live and back, cleaned up
# after. Builds nothing itself (`make demo` first builds the full release
# build, with mwand's HTTP listener, in target/full/release); set
# MWAN_BIN_DIR to use binaries from elsewhere. Needs root.
# First run: mwand with no config at all (automatic mode). Second run: the
# demo config, with the dashboard on http://127.0.0.1:$DEMO_PORT/ (default
# 8080; relayed into the router namespace). On a terminal the demo waits
# for Enter before the cut, before the restore and before it stops, so the
# page can be watched; otherwise it runs straight through.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# The router build (target/release) has no --http: the demo runs the full one.
bin=${MWAN_BIN_DIR:-$here/target/full/release}
for b in mwand mwan-track mwanctl mwan-testbed; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b missing; run 'make demo' (it builds first) or set MWAN_BIN_DIR" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)" >&2; exit 1; }

name="demo$$"
work=$(mktemp -d /tmp/mwan-demo.XXXXXX)
# The trackers run unprivileged (mwand --tracker-user, default nobody) and
# reach mwand through the run dir inside: mktemp makes it 0700.
chmod 0711 "$work"
run="$work/run"
mwand_pid=""
relay_pid=""
port=${DEMO_PORT:-8080}
router_ns="mwtb-$name-router"
interactive=false
[ -t 0 ] && [ -t 1 ] && interactive=true

# mwand runs under ip netns exec, which execs it: $! is mwand itself.
stop_mwand() {
  if [ -n "$mwand_pid" ] && kill -0 "$mwand_pid" 2>/dev/null; then
    kill -TERM "$mwand_pid"
    for _ in $(seq 50); do kill -0 "$mwand_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  mwand_pid=""
}

cleanup() {
  set +e
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null
  stop_mwand
  "$bin/mwan-testbed" --name "$name" down >/dev/null 2>&1
  rm -rf "$work"
  echo "== cleaned up (testbed $name removed, mwand stopped)"
}
trap cleanup EXIT INT TERM

tb() { "$bin/mwan-testbed" --name "$name" "$@"; }
ctl() { "$bin/mwanctl" --run-dir "$run" "$@"; }
ms() { date +%s%3N; }
# First active interface of policy "failover", and the state of a WAN, from
# mwanctl's tables (docs/mwanctl.md).
active() { ctl policies 2>/dev/null | awk '$1 == "failover" { print $2 }'; }
state_of() { ctl interfaces 2>/dev/null | awk -v w="$1" '$1 == w { print $3 }'; }
wait_for() { # wait_for SECONDS COMMAND...: poll every 50 ms
  local deadline=$(( $(ms) + $1 * 1000 )); shift
  until "$@"; do
    [ "$(ms)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
is_active() { [ "$(active)" = "$1" ]; }
both_online() { [ "$(state_of "${1:-wan1}")" = online ] && [ "$(state_of "${2:-wan2}")" = online ]; }
pause() { # pause WHAT: on a terminal, wait for Enter
  if $interactive; then
    read -r -p "-- press Enter to $1 " _
  fi
}
lan_fetch() { # one HTTP request from the LAN client through the router
  tb exec lan bash -c 'exec 3<>/dev/tcp/203.0.113.80/80 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && head -c 200 <&3 | head -n1' 2>/dev/null
}

echo "== bringing up the testbed: router, LAN client, two ISPs, an internet"
tb up --wans 2
# Realistic uplinks, so status has something to show: a fibre-like wan1 and
# a slower, jitterier wan2, both with 1 % loss (round-trip figures).
echo "== impairing: wan1 20 ms +- 2 ms, wan2 45 ms +- 5 ms, 1 % loss each"
tb impair wan1 --delay 20 --jitter 2 --loss 1 >/dev/null
tb impair wan2 --delay 45 --jitter 5 --loss 1 >/dev/null

echo
echo "== run 1: mwand with no config file at all (automatic mode)"
ip netns exec "$router_ns" "$bin/mwand" --config "$work/none" --run-dir "$run" \
  --supervisor embedded --tracker-bin "$bin/mwan-track" --hook /nonexistent \
  --auto-track-ip 203.0.113.1 --auto-track-ip 203.0.113.2 --auto-track-ip 203.0.113.3 \
  >"$work/mwand-auto.log" 2>&1 &
mwand_pid=$!
wait_for 30 both_online eth1 eth2 || { echo "demo: automatic mode did not bring both WANs online; log:" >&2; cat "$work/mwand-auto.log" >&2; exit 1; }
ctl status
echo
echo "-- what it runs, as UCI (mwanctl config --write); the demo's public targets are the testbed's hosts:"
ctl config --write
stop_mwand

echo
echo "== run 2: demo config ($work/mwan): our defaults, 3 targets, 0.2 s interval"
{
  printf "config globals 'globals'\n\toption mmx_mask '0x3F00'\n\n"
  for n in 1 2; do
    cat <<EOF
config interface 'wan$n'
	option enabled '1'
	option device 'eth$n'
	list track_ip '203.0.113.1'
	list track_ip '203.0.113.2'
	list track_ip '203.0.113.3'
	option reliability '1'
	option interval '0.2'
	option failure_interval '0.2'
	option recovery_interval '0.2'
	option timeout '3'
	option down '3'
	option up '10'

EOF
  done
  cat <<'EOF'
config member 'wan1_primary'
	option interface 'wan1'
	option metric '1'

config member 'wan2_backup'
	option interface 'wan2'
	option metric '2'

config policy 'failover'
	list use_member 'wan1_primary'
	list use_member 'wan2_backup'
	option last_resort 'unreachable'

config rule 'everything'
	option dest_ip '0.0.0.0/0'
	option use_policy 'failover'
EOF
} >"$work/mwan"
ctl check --config "$work/mwan"

echo "== starting mwand in the router namespace (log: $work/mwand.log)"
ip netns exec "$router_ns" "$bin/mwand" --config "$work/mwan" --run-dir "$run" \
  --supervisor embedded --tracker-bin "$bin/mwan-track" --hook /nonexistent \
  --http "127.0.0.1:$port" >"$work/mwand.log" 2>&1 &
mwand_pid=$!
# The browser is out here; mwand's loopback is in the router namespace.
/usr/bin/python3 "$here/integration/dashboard-relay.py" "$router_ns" "$port" &
relay_pid=$!
wait_for 20 both_online || { echo "demo: WANs did not come online; mwand log:" >&2; cat "$work/mwand.log" >&2; exit 1; }
sleep 3 # a few seconds of samples for the latency, jitter and loss figures
echo
ctl status
echo
echo "LAN client fetches http://203.0.113.80/: $(lan_fetch)"
echo
echo "== dashboard: http://127.0.0.1:$port/ (mwand --http, relayed from the router namespace)"
pause "cut wan1 (watch its card and policy failover on the page)"

echo
echo "== cutting wan1 silently (link stays up, packets vanish)"
t0=$(ms)
tb cut wan1 >/dev/null
if wait_for 10 is_active wan2; then
  echo "failover to wan2 after $(( $(ms) - t0 )) ms"
else
  echo "demo: no failover within 10 s" >&2; cat "$work/mwand.log" >&2; exit 1
fi
sleep 0.3
ctl status
echo
echo "LAN client fetches http://203.0.113.80/ through wan2: $(lan_fetch)"
ctl explain failover
pause "restore wan1"

echo
echo "== restoring wan1"
t0=$(ms)
tb restore wan1 >/dev/null
if wait_for 20 is_active wan1; then
  echo "fail-back to wan1 after $(( $(ms) - t0 )) ms (wan1 must pass 'up' = 10 good rounds first)"
else
  echo "demo: no fail-back within 20 s" >&2; cat "$work/mwand.log" >&2; exit 1
fi
ctl status
echo
echo "LAN client fetches http://203.0.113.80/ through wan1: $(lan_fetch)"
echo
echo "== mwand's log"
cat "$work/mwand.log"
pause "stop the demo (the page stays at http://127.0.0.1:$port/ until then)"
