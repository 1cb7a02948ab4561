#!/usr/bin/env bash
# Build an OCI bundle whose rootfs is Debian's busybox-static, with a config from `pyrunc spec`.
# Usage: bundles/make-busybox.sh [DEST]   (default: bundles/busybox next to this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/busybox}
dest=$(realpath -m "$dest")   # the script changes directory below
busybox=/bin/busybox   # Debian's busybox-static: one static binary, nothing else needed inside
if [ ! -x "$busybox" ]; then
    echo "busybox not found: apt-get install busybox-static" >&2
    exit 1
fi
rm -rf "$dest"
mkdir -p "$dest/rootfs"
cd "$dest/rootfs"
mkdir -p bin sbin etc proc sys dev tmp root home var/run usr/bin usr/sbin
chmod 1777 tmp
cp "$busybox" bin/busybox
for applet in $(bin/busybox --list); do
    [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > etc/passwd
printf 'root:x:0:\nnobody:x:65534:\n' > etc/group
printf '127.0.0.1 localhost\n' > etc/hosts
cd "$dest"
# this checkout's `spec` (not whichever pyrunc is installed on PATH, which may be another's)
PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" python3 -m pyrunc spec
# a config that prints from inside and exits, with no terminal (the default asks for one)
python3 - config.json <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["terminal"] = False
config["process"]["args"] = ["sh", "-c", "echo hello from pyrunc: hostname $(hostname), pid $$"]
config["hostname"] = "pyrunc"
json.dump(config, open(path, "w"), indent=2)
PY
echo "bundle ready: $dest"
