#!/usr/bin/env bash
# Install what pyrunc and its tests need on a fresh Debian machine (as root), then pyrunc itself.
set -euo pipefail
cd "$(dirname "$0")/.."
# golang-github-containers-common: podman's default seccomp profile (/usr/share/containers/seccomp.json),
# the containers-common files as Debian 12 packages them
# podman (brings conmon), netavark and iptables (the bridge network backend podman 4 prefers and
# its firewall tool: Debian's podman pulls in neither), containerd (ctr and the runc v2 shim) and
# umoci (builds the OCI image containerd imports): tests/test_podman.py, tests/test_containerd.py;
# docker.io (dockerd 20.10 and its client): tests/test_docker.py;
# nftables: libnftables, which pyrunc's bridge networks use for NAT and published ports;
# containernetworking-plugins (bridge, host-local, loopback for containerd's CRI plugin) and
# util-linux (nsenter, ipcmk, ipcrm): tests/test_cri.py; pipx: tests/test_packaging.py;
# uidmap (newuidmap/newgidmap) and slirp4netns: rootless pyrunc and podman, tests/test_rootless.py;
# strace: holds a hook's process at its execve in tests/test_security.py
packages=(busybox-static runc crun libseccomp-dev gcc python3-dev iproute2 procps nftables
          golang-github-containers-common podman netavark iptables containerd umoci docker.io
          containernetworking-plugins util-linux uidmap slirp4netns pipx strace)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'
