#!/usr/bin/env bash
# Builds Keyway's images with podman from `pnpm build`'s dist/ (docs/deploy/containers.md):
#   keyway-<svc> for every service in dist/services/, keyway-importer (the agent), keyway-cli (`keyway db migrate`),
# each tagged with the root package.json's version, all on one runtime stage (deploy/containers/Containerfile).
# No registry is reachable where Keyway is built, so that runtime is gathered here from this host's files: the node
# binary (Node 20), the shared libraries ldd names for it and for any native addon in dist/, and the CA bundle.
# Usage: deploy/containers/build.sh [DIST]   (DIST: what `pnpm build` wrote, default dist/; KEYWAY_NODE=/path/to/node
# picks another node binary than /usr/bin/node)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dist=${1:-$root/dist}
node_bin=${KEYWAY_NODE:-/usr/bin/node}
ca_bundle=/etc/ssl/certs/ca-certificates.crt

fail() { echo "containers: $*" >&2; exit 1; }
command -v podman >/dev/null || fail "podman is not installed (apt-get install podman)"
[ -f "$dist/agent/keyway-importer.mjs" ] && [ -f "$dist/cli/keyway.mjs" ] || fail "no build in $dist: run pnpm build first"
dist=$(cd "$dist" && pwd)
[ -f "$ca_bundle" ] || fail "$ca_bundle is missing (apt-get install ca-certificates)"
major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "$node_bin is Node $major; the services need Node 20 or later"
version=$("$node_bin" -p 'JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).version ?? ""' "$root/package.json")
[ -n "$version" ] || fail "the root package.json has no version to tag the images with"

host=$(mktemp -d)
trap 'rm -rf "$host"' EXIT
rootfs=$host/rootfs

# node at /usr/bin/node (PATH=/usr/bin in the image), then every library the dynamic loader resolves for it and for
# native addons, at the path the host resolves (the loader's own path is fixed in the ELF header)
install -D -m 0755 "$node_bin" "$rootfs/usr/bin/node"
mapfile -t addons < <(find "$dist" -name '*.node' -type f)
# one ldd per file: given several, it heads each list with the file's name
for lib in $(for file in "$node_bin" "${addons[@]}"; do ldd "$file"; done | grep -o '/[^ ]*' | sort -u); do
  install -D -m 0755 "$lib" "$rootfs$lib"
done
install -D -m 0644 "$ca_bundle" "$rootfs$ca_bundle"
# the non-root user of contract item 6 (uid and gid 65532), as os.userInfo() and logs name it
install -d -m 0755 "$rootfs/etc"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nkeyway:x:65532:65532:keyway:/var/lib/keyway:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nkeyway:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
# mount points: TLS (tls.crt, tls.key, ca.crt) and secrets as files, read-only; /tmp for Node
install -d -m 0755 "$rootfs/etc/keyway/tls" "$rootfs/run/secrets/keyway"
install -d -m 1777 "$rootfs/tmp"
# the state directory, the user's own (copied in with --chown), with the directories compose mounts volumes at: Docker
# fills a new volume from the image's directory, owner and mode included, but makes one the image lacks root's
install -d -m 0700 "$host/state" "$host/state/releases" "$host/state/importer" "$host/state/cli"

build() {
  local name=$1
  shift
  local started=$SECONDS previous
  previous=$(podman image inspect --format '{{.Id}}' "keyway-$name:$version" 2>/dev/null || true)
  # podman warns of the service stage's ARGs when it builds another target: not worth a line
  podman build --quiet --file "$root/deploy/containers/Containerfile" --build-context "host=$host" --tag "keyway-$name:$version" "$@" "$dist" 2>&1 >/dev/null |
    { grep -Ev 'missing .{0,2}(SERVICE|PORT).{0,2} build argument' >&2 || true; }
  # the image this tag named before, with its build-cache layers: each new build would otherwise keep ~50 MB more
  # (kept while a container still uses it)
  if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "keyway-$name:$version")" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  echo "keyway-$name:$version ($((SECONDS - started)) s)"
}

declare -A ports=([idp]=8441 [entitlement]=8442 [pas]=8443 [pac]=8444 [topic]=8445 [audit]=8446 [releases]=8447)
services=()
for dir in "$dist"/services/*/; do
  service=$(basename "$dir")
  [ -n "${ports[$service]:-}" ] || fail "no port known for dist/services/$service (add it to deploy/containers/build.sh)"
  services+=("$service")
done
started=$SECONDS
# the first build makes the runtime stage's layers; the others find them in the cache and run side by side
build importer --target importer
pids=()
build cli --target cli &
pids+=($!)
for service in "${services[@]}"; do
  build "$service" --target service --build-arg "SERVICE=$service" --build-arg "PORT=${ports[$service]}" &
  pids+=($!)
done
# every build ends before the runtime files are removed (the EXIT trap), failed or not
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || fail "$failed image(s) failed to build (their errors are above)"
echo "built $((${#pids[@]} + 1)) images in $((SECONDS - started)) s"
