#!/usr/bin/env bash
# Cross-build the workspace for router-like CPUs and run the tests that need
# no kernel privileges under qemu-user, with Debian trixie's own Rust (1.85,
# our declared minimum). Usage, as root:
#
#   integration/cross/cross-test.sh [armv7] [aarch64] [s390x]   (default: armv7 s390x)
#
# Everything comes from Debian's archive and crates.io: a trixie chroot made
# with debootstrap, its rustc/cargo, the targets' std libraries
# (libstd-rust-dev:ARCH), cross gcc as linker and qemu-user-static, whose
# interpreters are registered with binfmt_misc so that tests which start our
# binaries run them emulated too. The chroot, cargo's downloads and the build
# directory live in $MWAN_CROSS_CACHE (default /var/cache/mwan-cross) so a
# second run is incremental; with an empty cache the same script builds all
# of it from nothing. See docs/cross.md.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${MWAN_CROSS_CACHE:-/var/cache/mwan-cross}
chroot_dir=$cache/trixie
# The fixtures and ubus vectors the tests read from ../shared beside the clone.
shared=${MWAN_SHARED:-$repo/../shared}
mirror=${MWAN_CROSS_MIRROR:-http://deb.debian.org/debian}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(armv7 s390x)
[ "${targets[0]}" != all ] || targets=(armv7 aarch64 s390x)

# What the chroot gets on top of debootstrap's minbase. The list is also the
# stamp: when it changes, the next run installs again. Cross gcc is the
# linker, libc6-dev-*-cross its C runtime and qemu's libraries.
chroot_packages="rustc cargo gcc libc6-dev jq ca-certificates qemu-user-static
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-s390x-linux-gnu libc6-dev-s390x-cross"

die() { echo "cross-test: $*" >&2; exit 1; }

# target name -> rust triple, Debian arch, gnu triple, qemu binfmt name
target_info() {
    case $1 in
    armv7) echo armv7-unknown-linux-gnueabihf armhf arm-linux-gnueabihf arm ;;
    aarch64) echo aarch64-unknown-linux-gnu arm64 aarch64-linux-gnu aarch64 ;;
    s390x) echo s390x-unknown-linux-gnu s390x s390x-linux-gnu s390x ;;
    *) die "unknown target '$1' (armv7, aarch64, s390x)" ;;
    esac
}

in_chroot() {
    chroot "$chroot_dir" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

setup_chroot() {
    if [ ! -e "$chroot_dir/.mwan-debootstrap" ]; then
        command -v debootstrap >/dev/null || {
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        }
        echo "cross-test: building the trixie chroot in $chroot_dir"
        rm -rf "$chroot_dir.new" "$chroot_dir"
        mkdir -p "$cache"
        debootstrap --variant=minbase trixie "$chroot_dir.new" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
            die "debootstrap failed, see $cache/debootstrap.log"
        touch "$chroot_dir.new/.mwan-debootstrap"
        mv "$chroot_dir.new" "$chroot_dir"
    fi
    if [ "$(cat "$chroot_dir/.mwan-packages" 2>/dev/null)" = "$chroot_packages" ]; then
        return
    fi
    echo "cross-test: installing rustc, cargo, cross gcc and qemu in the chroot"
    for arch in armhf arm64 s390x; do in_chroot dpkg --add-architecture "$arch"; done
    in_chroot sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${chroot_packages//$'\n'/ }" \
        >"$cache/apt.log" 2>&1 || die "apt-get in the chroot failed, see $cache/apt.log"
    # The targets' std: libstd-rust-dev:ARCH of exactly our rustc's version.
    # Unpacked rather than installed: installing it through multiarch pulls
    # libc6:ARCH and friends, which the mirror lacks for s390x; the linker and
    # qemu take libc from the cross packages in /usr/<gnu triple> instead.
    # shellcheck disable=SC2016 # expanded in the chroot
    in_chroot sh -c 'set -e; v=$(dpkg-query -W -f="\${Version}" rustc); mkdir -p /var/tmp/std; cd /var/tmp/std
        for a in armhf arm64 s390x; do apt-get download -qq libstd-rust-dev:$a=$v 2>/dev/null; dpkg -x libstd-rust-dev_*_$a.deb /; done
        rm -rf /var/tmp/std' >>"$cache/apt.log" 2>&1 || die "libstd-rust-dev download failed, see $cache/apt.log"
    echo "$chroot_packages" >"$chroot_dir/.mwan-packages"
}

# Lets the kernel run the targets' executables with the chroot's qemu. F
# opens the interpreter now, so it works inside the chroot (and goes on
# working if that chroot is rebuilt); P keeps argv[0] (a multi-call binary
# looks at it). Our own entry names, registered once per boot: replacing them
# would break a run that is starting binaries at that moment.
register_binfmt() {
    local misc=/proc/sys/fs/binfmt_misc name conf line
    [ -e $misc/register ] || mount -t binfmt_misc binfmt_misc $misc
    for t in "${targets[@]}"; do
        read -r _ _ _ name <<<"$(target_info "$t")"
        conf=$chroot_dir/usr/lib/binfmt.d/qemu-$name.conf
        [ -e "$conf" ] || die "no $conf in the chroot"
        [ -e "$misc/mwan-cross-$name" ] && continue
        line=$(sed -e "s|^:qemu-$name:|:mwan-cross-$name:|" \
            -e "s|:/usr/libexec/qemu-binfmt/|:$chroot_dir/usr/libexec/qemu-binfmt/|" "$conf")
        echo "$line" >$misc/register
    done
}

# Tests that need no kernel privileges, by package (the integration tests and
# the netns ones run natively in `make test`). mwan-ubus's package test needs
# the shellcheck tool and mwand_procd a root mwand: they run natively only.
test_sets=(
    "-p mwan-core -p mwan-proto -p mwanctl -p mwan-track"
    "-p mwan-netlink --lib --test golden"
    "-p mwan-ubus --lib --test vectors --test replay --test procd --test netifd_luci --test robustness --test double --test agent"
)

# What ships: the bin targets built from a package's src/main.rs, except the
# testbed and the integration harness (not installed on routers).
shipped_bins_query='.packages[]
    | select(.name != "mwan-testbed" and .name != "mwan-integration")
    | .targets[] | select(.kind == ["bin"] and (.src_path | endswith("/src/main.rs"))) | .name'

# Inside the namespace: mounts, then per target release build, sizes, tests.
inner() {
    mount -t proc proc "$chroot_dir/proc"
    # The tracker reads its device's counters from sysfs (a test reads lo's).
    mount -t sysfs sysfs "$chroot_dir/sys"
    mount --rbind /dev "$chroot_dir/dev"
    mkdir -p "$chroot_dir/mwan/src" "$chroot_dir/mwan/shared" "$chroot_dir/mwan/cargo" "$chroot_dir/mwan/target"
    mount --bind "$repo" "$chroot_dir/mwan/src"
    [ -d "$shared" ] && mount --bind "$shared" "$chroot_dir/mwan/shared"
    mount --bind "$cache/cargo" "$chroot_dir/mwan/cargo"
    mount --bind "$cache/target" "$chroot_dir/mwan/target"
    cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
    # cargo fetches from crates.io with the host's trust store (it may hold
    # a local CA the chroot's ca-certificates lacks).
    cp /etc/ssl/certs/ca-certificates.crt "$chroot_dir/etc/ssl/certs/host-ca-certificates.crt"

    local failed=0 summary="" t triple gnu env_t total_passed=0 total_failed=0
    local cargo_env=(CARGO_HOME=/mwan/cargo CARGO_TARGET_DIR=/mwan/target CARGO_TERM_COLOR=never
        CARGO_HTTP_CAINFO=/etc/ssl/certs/host-ca-certificates.crt)
    # The declared minimum Rust holds for everything `make test` builds:
    # the whole workspace with every test target, by Debian's 1.85.
    echo "=== $(in_chroot rustc --version): cargo check --workspace --all-targets"
    if ! in_chroot "${cargo_env[@]}" sh -c "cd /mwan/src && cargo check --locked --workspace --all-targets"; then
        failed=1
        summary="$summary\nworkspace on $(in_chroot rustc --version): cargo check FAILED"
    fi
    for t in "${targets[@]}"; do
        read -r triple _ gnu _ <<<"$(target_info "$t")"
        env_t=$(echo "$triple" | tr 'a-z-' 'A-Z_')
        run() {
            in_chroot "${cargo_env[@]}" "CARGO_TARGET_${env_t}_LINKER=$gnu-gcc" "QEMU_LD_PREFIX=/usr/$gnu" \
                sh -c "cd /mwan/src && $*"
        }
        echo "=== $t ($triple): release build"
        local bins bin_args="" b sizes=""
        bins=$(run "cargo metadata --no-deps --format-version 1 | jq -r '$shipped_bins_query'")
        for b in $bins; do bin_args="$bin_args --bin $b"; done
        if ! run "cargo build --locked --release --target $triple $bin_args"; then
            failed=1
            summary="$summary\n$t ($triple): release build FAILED"
            continue
        fi
        for b in $bins; do
            run "$gnu-strip -o /tmp/$b.stripped /mwan/target/$triple/release/$b"
            sizes="$sizes $b=$(stat -c %s "$chroot_dir/tmp/$b.stripped")"
        done
        echo "=== $t: stripped release sizes (bytes):$sizes"

        echo "=== $t: tests under qemu"
        local log=$cache/test-$t.log set passed=0 fails=0 ok=1
        : >"$log"
        for set in "${test_sets[@]}"; do
            run "cargo test --locked --no-fail-fast --target $triple $set" 2>&1 | tee -a "$log" || ok=0
        done
        passed=$(awk '/^test result:/ {n += $4} END {print n + 0}' "$log")
        fails=$(awk '/^test result:/ {n += $6} END {print n + 0}' "$log")
        [ "$ok" = 1 ] && [ "$fails" = 0 ] || failed=1
        summary="$summary\n$t ($triple): $passed passed, $fails failed; stripped bytes:$sizes"
        total_passed=$((total_passed + passed))
        total_failed=$((total_failed + fails))
    done
    echo
    echo "=== cross-test summary"
    echo -e "${summary#\\n}"
    echo "cross-test: $total_passed passed, $total_failed failed"
    return $failed
}

if [ "${1:-}" = --inner ]; then
    shift
    targets=("$@")
    inner
    exit
fi

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and binfmt_misc need it)"
setup_chroot
register_binfmt
mkdir -p "$cache/cargo" "$cache/target"
[ -d "$shared" ] || echo "cross-test: no $shared: fixture tests will fail" >&2

# The rest runs in a private mount namespace: its bind mounts go away with
# it, whatever happens.
exec unshare --mount --propagation private "$0" --inner "${targets[@]}"
