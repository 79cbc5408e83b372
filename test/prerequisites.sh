#!/usr/bin/env bash
# What `pnpm test` needs beyond node_modules, brought up on a fresh machine: PostgreSQL, Redis and RabbitMQ
# (started when their ports are closed), Debian's Chromium for the console test, Debian's HAProxy for
# the multi-instance test and Debian's clamav-daemon for the scanner tests (installed when missing). Part of README command 2, so the command works
# alone, not only under .ci/run.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for_port() {
  for _ in $(seq 1 120); do port_open "$1" && return 0; sleep 1; done
  echo "prerequisites: nothing listens on port $1 after 120 s" >&2
  return 1
}
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "prerequisites: '$*' needs root (or sudo)" >&2
    return 1
  fi
}

# Tests use KEYWAY_TEST_POSTGRES_URL / KEYWAY_TEST_REDIS_URL / KEYWAY_TEST_AMQP_URL when set; only the local defaults are started here.
if [ -z "${KEYWAY_TEST_POSTGRES_URL:-}" ] && ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || { echo "prerequisites: PostgreSQL is not running and is not installed (apt-get install postgresql)" >&2; exit 1; }
  echo "prerequisites: starting PostgreSQL on 127.0.0.1:5432"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_for_port 5432
fi
if [ -z "${KEYWAY_TEST_REDIS_URL:-}" ] && ! port_open 6379; then
  command -v redis-server >/dev/null || { echo "prerequisites: Redis is not running and redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
  echo "prerequisites: starting Redis on 127.0.0.1:6379"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for_port 6379
fi
if [ -z "${KEYWAY_TEST_AMQP_URL:-}" ] && ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || { echo "prerequisites: RabbitMQ is not running and rabbitmq-server is not installed (apt-get install rabbitmq-server)" >&2; exit 1; }
  echo "prerequisites: starting RabbitMQ on 127.0.0.1:5672"
  as_root rabbitmq-server -detached
  wait_for_port 5672
fi

# The RabbitMQ cluster fault test (test/delivery/faults.rabbit-cluster.test.ts) runs its nodes with an epmd of their own.
command -v epmd >/dev/null || { echo "prerequisites: epmd is missing (apt-get install erlang-base, which rabbitmq-server depends on)" >&2; exit 1; }

# The Kubernetes manifests test renders deploy/kubernetes with `kubectl kustomize` (kustomize >= 5: components,
# replacements); Debian's kubernetes-client (1.20, kustomize 2) is too old, so it cannot be installed from here.
command -v kubectl >/dev/null || { echo "prerequisites: kubectl is missing (kubectl >= 1.27, whose kustomize is >= 5, for test/deploy/kubernetes.test.ts)" >&2; exit 1; }

# The console test drives Debian's Chromium (test/console/console.test.ts).
if [ ! -x /usr/bin/chromium ]; then
  echo "prerequisites: installing Debian's chromium for the console test"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  [ -x /usr/bin/chromium ] || { echo "prerequisites: /usr/bin/chromium is still missing after apt-get install chromium" >&2; exit 1; }
fi

# The multi-instance test puts HAProxy (TCP mode, TLS passthrough) in front of the services (test/deploy/multi-instance.test.ts).
if ! command -v haproxy >/dev/null; then
  echo "prerequisites: installing Debian's haproxy for the multi-instance test"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
  command -v haproxy >/dev/null || { echo "prerequisites: haproxy is still missing after apt-get install haproxy" >&2; exit 1; }
fi

# The SSH tests check our certificates and SFTP server against Debian's OpenSSH client (ssh-keygen, sftp).
if ! command -v ssh-keygen >/dev/null || ! command -v sftp >/dev/null; then
  echo "prerequisites: installing Debian's openssh-client for the SSH and SFTP tests"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null
  command -v ssh-keygen >/dev/null && command -v sftp >/dev/null || { echo "prerequisites: ssh-keygen or sftp is still missing after apt-get install openssh-client" >&2; exit 1; }
fi

# The scanner tests (packages/scan) start clamd daemons of their own, each with its own clamd.conf and a
# one-signature EICAR database (packages/testkit/src/servers/clamd.ts), and stop them by PID: only the
# package is needed here, never the system's clamd service or freshclam.
if [ ! -x /usr/sbin/clamd ]; then
  echo "prerequisites: installing Debian's clamav-daemon for the scanner tests"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon >/dev/null 2>&1 || {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon >/dev/null
  }
  [ -x /usr/sbin/clamd ] || { echo "prerequisites: /usr/sbin/clamd is still missing after apt-get install clamav-daemon" >&2; exit 1; }
fi

# The systemd unit test (test/deploy/systemd.test.ts) checks the units with systemd-analyze verify and the
# TLS groups with systemd-sysusers --root: Debian's systemd package, never started here.
if ! command -v systemd-analyze >/dev/null || ! command -v systemd-sysusers >/dev/null; then
  echo "prerequisites: installing Debian's systemd for the unit test (systemd-analyze, systemd-sysusers)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
  command -v systemd-analyze >/dev/null || { echo "prerequisites: systemd-analyze is still missing after apt-get install systemd" >&2; exit 1; }
fi

# The image test builds Keyway's images with Debian's podman and starts them with runc (test/deploy/images.test.ts;
# docs/deploy/containers.md says why runc and not podman's default crun).
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  echo "prerequisites: installing Debian's podman and runc for the image test"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
  command -v podman >/dev/null && command -v runc >/dev/null || { echo "prerequisites: podman or runc is still missing after apt-get install podman runc" >&2; exit 1; }
fi
