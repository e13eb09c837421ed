#!/bin/sh
# docker-entrypoint.sh: makes the Docker image answer to etcd's command line. Installed as the image's
# ENTRYPOINT and linked as /usr/local/bin/etcd, because a Kubernetes (kubeadm, Kind) etcd static pod
# runs `etcd <flags>` itself and never goes through the entrypoint. CETCD_BIN overrides the binary.
set -eu
cetcd=${CETCD_BIN:-/usr/local/bin/cetcd}

# Called by the name etcd (the link): the arguments are etcd's flags, which cetcd takes as they are.
if [ "$(basename "$0")" = etcd ]; then
    exec "$cetcd" "$@"
fi

# As the ENTRYPOINT: no arguments runs the server as etcd's image does, reachable from outside the
# container; `etcd ...`, `cetcd ...` or flags alone run it with those flags; any other command
# (etcdctl, sh) runs as given.
if [ "$#" -eq 0 ]; then
    exec "$cetcd" --data-dir /var/lib/etcd --listen-client-urls http://0.0.0.0:2379 \
        --advertise-client-urls http://localhost:2379
fi
case "$1" in
etcd | cetcd)
    shift
    exec "$cetcd" "$@"
    ;;
-*) exec "$cetcd" "$@" ;;
*) exec "$@" ;;
esac
