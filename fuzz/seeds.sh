#!/usr/bin/env bash
# Rebuilds fuzz/corpus/ (the committed seeds, docs/fuzzing.md): the real
# mwan3 configs, every distinct ubus frame of the captures, the netlink
# golden messages, and seeds from our own encoders (examples/seeds.rs).
# Needs ../shared (the fixtures) beside the repository.
set -euo pipefail
cd "$(dirname "$0")"
shared="${SHARED:-../../shared}"
rm -rf corpus && mkdir -p corpus/{uci,track_frame,control_request,ubus_message,netlink,probe_reply,http_request}
cp "$shared"/fixtures/mwan3-real/*.uci corpus/uci/
python3 - "$shared/ubus-vectors" ../crates/mwan-netlink/golden <<'PY'
import glob, hashlib, json, os, sys
def put(target, data):
    name = hashlib.sha1(data).hexdigest()[:16]
    open(os.path.join("corpus", target, name), "wb").write(data)
# A few frames of each message type and size class: the captures hold
# 1 MB of mostly repeated shapes, the seeds need only their variety.
kept = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    for m in json.load(open(f)):
        if isinstance(m, dict) and m.get("hex"):
            data = bytes.fromhex(m["hex"])
            key = (data[1:2], len(data).bit_length())
            if len(data) <= 4096 and kept.get(key, 0) < 3:
                kept[key] = kept.get(key, 0) + 1
                put("ubus_message", data)
for f in sorted(glob.glob(os.path.join(sys.argv[2], "*.hex"))):
    for line in open(f):
        line = line.strip()
        if line and not line.startswith(("#", "ip ", "nft ")) and all(c in "0123456789abcdef" for c in line):
            put("netlink", bytes.fromhex(line))
PY
# --cfg fuzzing reaches the tracker's DNS query builder.
RUSTFLAGS="--cfg fuzzing" CARGO_TARGET_DIR="$PWD/target/seeds" cargo run --quiet --locked --example seeds
du -sh corpus
