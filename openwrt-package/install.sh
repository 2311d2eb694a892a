#!/bin/sh
# Installs mwan-rs into DESTDIR: the one list of installed files, used by
# both `make install DESTDIR=DIR` and the OpenWrt package's Package/install,
# so the two cannot drift apart (docs/openwrt.md, docs/footprint.md).
#
# Usage: install.sh MWAN_BINARY DESTDIR
set -eu

[ $# -eq 2 ] || { echo "usage: $0 MWAN_BINARY DESTDIR" >&2; exit 2; }
bin=$1
dest=$2
files=$(cd "$(dirname "$0")/files" && pwd)

# mode source target
put() {
	mkdir -p "$dest$(dirname "$3")"
	cp "$2" "$dest$3"
	chmod "$1" "$dest$3"
}

put 0755 "$bin" /usr/sbin/mwan
# The applets of the one executable (busybox style: argv[0] picks it).
for applet in mwand mwan-track mwanctl mwan3; do
	ln -sf mwan "$dest/usr/sbin/$applet"
done
put 0755 "$files/mwan.init" /etc/init.d/mwan
put 0600 "$files/mwan.config" /etc/config/mwan
put 0644 "$files/mwan.user" /etc/mwan.user
put 0755 "$files/mwan.uci-defaults" /etc/uci-defaults/90-mwan-migrate
put 0644 "$files/mwan.acl.json" /usr/share/rpcd/acl.d/mwan.json
put 0755 "$files/luci-mwan3" /usr/libexec/mwan/luci-mwan3
