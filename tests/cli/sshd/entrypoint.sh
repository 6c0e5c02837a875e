#!/bin/sh
# TEST-ONLY: the docker group gets the gid of the engine's socket (bind-mounted from the test
# machine), the authorized keys and the host key come from /botstack-test (mounted by the test),
# then sshd runs in the foreground.
set -eu
gid=$(stat -c %g /var/run/docker.sock)
groupmod -o -g "$gid" docker
install -m 0600 /botstack-test/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
install -m 0644 /botstack-test/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
for u in botadmin deploy; do
	install -d -o "$u" -g "$u" -m 0700 "/home/$u/.ssh"
	install -o "$u" -g "$u" -m 0600 "/botstack-test/$u.pub" "/home/$u/.ssh/authorized_keys"
done
exec /usr/sbin/sshd -D -e
