#!/usr/bin/env bash
# Writes what compose.yaml needs into deploy/compose/secrets/ (mode 0700, files 0600 or 0644 inside):
# a CA and one certificate per service (spiffe://keyway/<svc> plus its compose name), the KEK keyring,
# the audit checkpoint key, passwords and the connection URLs built from them. Needs openssl only.
# Files that exist are kept, so running it again changes nothing; delete secrets/ to start over.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets/tls
cd secrets

SERVICES=(idp entitlement pas pac topic audit releases)
ROLES=(idp entitlement pas pac topic audit releases)

# write <file> <content> unless it exists
keep() { [ -e "$1" ] || printf '%s' "$2" >"$1"; }
password() { openssl rand -hex 24; }

keep postgres-password "$(password)"
keep redis-password "$(password)"
keep rabbitmq-password "$(password)"
keep metrics-token "$(password)"
keep importer-password "$(password)"
for role in "${ROLES[@]}"; do keep "role-$role-password" "$(password)"; done

# connection settings: each service its own PostgreSQL role; one Redis password and one RabbitMQ user in this quick start
keep admin-database-url "postgres://postgres:$(cat postgres-password)@postgres:5432/keyway"
for role in "${ROLES[@]}"; do keep "$role-database-url" "postgres://keyway_$role:$(cat "role-$role-password")@postgres:5432/keyway"; done
keep redis-url "redis://default:$(cat redis-password)@redis:6379"
keep amqp-url "amqp://keyway:$(cat rabbitmq-password)@rabbitmq:5672/keyway"
keep rabbitmq.conf "default_user = keyway
default_pass = $(cat rabbitmq-password)
default_vhost = keyway
"
if [ ! -e roles.sql ]; then
  for role in "${ROLES[@]}"; do echo "ALTER ROLE keyway_$role PASSWORD '$(cat "role-$role-password")';"; done >roles.sql
fi

# the KEK keyring sealing signing keys and SAS root keys (32 bytes, canonical base64)
keep kek.json "{\"current\":\"kek-1\",\"keks\":[{\"id\":\"kek-1\",\"key\":\"$(openssl rand -base64 32)\"}]}
"
[ -e audit-checkpoint.key ] || openssl genpkey -algorithm ed25519 -out audit-checkpoint.key

# a CA and a certificate per service: its SPIFFE ID (how services know each other) and the names it is called by
if [ ! -e tls/ca.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=Keyway quick start CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout tls/ca.key -out tls/ca.crt 2>/dev/null
fi
for svc in "${SERVICES[@]}"; do
  [ -e "tls/$svc.crt" ] && continue
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$svc" -keyout "tls/$svc.key" -out "tls/$svc.csr" 2>/dev/null
  openssl x509 -req -in "tls/$svc.csr" -CA tls/ca.crt -CAkey tls/ca.key -CAcreateserial -days 365 -out "tls/$svc.crt" \
    -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=URI:spiffe://keyway/$svc,DNS:$svc,DNS:localhost,IP:127.0.0.1") 2>/dev/null
  rm "tls/$svc.csr"
done

# The services run as uid 65532 and read these through bind mounts: everything but the KEK (copied by
# the kek service, as root, into a volume of its own with mode 0600) is readable; the directory is not.
chmod 0700 .
find . -type d -exec chmod 0755 {} +
find . -type f ! -name kek.json ! -name ca.key -exec chmod 0644 {} +
chmod 0700 .
echo "deploy/compose/secrets is ready"
