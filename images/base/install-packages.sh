#!/bin/sh
# Install the OS packages of the labenv hosts into a Debian bookworm root.
# Runs as root, either inside a chroot of a debootstrap folder or in a
# Dockerfile RUN step.
# Usage: install-packages.sh DIR, where DIR contains packages.txt and mta-dummy/.
set -eu

src=${1:?usage: install-packages.sh DIR}
export DEBIAN_FRONTEND=noninteractive

echo "labenv: building the placeholder MTA package"
dpkg-deb --root-owner-group --build "$src/mta-dummy" /tmp/labenv-mta-dummy.deb
# Installed before bsd-mailx so that its mail-transport-agent dependency is
# already met and apt does not choose exim4.
dpkg -i /tmp/labenv-mta-dummy.deb
rm -f /tmp/labenv-mta-dummy.deb

echo "labenv: installing $(grep -c -v '^#' "$src/packages.txt") packages"
apt-get update
grep -v '^#' "$src/packages.txt" | xargs apt-get install -y --no-install-recommends

# Each container generates its own SSH host keys at start (ssh-keygen -A), so
# the image must not carry the keys made by the openssh-server postinst.
rm -f /etc/ssh/ssh_host_*

# apt's lists and downloaded packages are not needed at run time.
apt-get clean
rm -rf /var/lib/apt/lists/*
echo "labenv: packages installed"
