#!/usr/bin/env bash
# A Kafka broker that trusts no one: clients must speak TLS and log in with SCRAM-SHA-512, and the
# StandardAuthorizer allows only what an ACL grants (each service writes only its own topics).
# Used by the tests (a private broker per test session) and as the recipe for a deployment.
#
#   stack/kafka-sasl.sh start DIR PORT CONTROLLER_PORT   generate a CA + broker cert, format, run in the foreground
#   stack/kafka-sasl.sh apply BOOTSTRAP DIR               create users and ACLs read from stdin (see shared.kafka_acls)
#
# DIR receives ca.pem (what clients trust: KAFKA_SSL_CAFILE), the broker's key and cert, the
# properties and the data. The admin user (super user) is `admin` with password $KAFKA_ADMIN_PASSWORD
# (default admin-secret); it exists from the format on, every other user is created by `apply`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIBS="${KAFKA_LIBS:-$ROOT/.stack/kafka/libs}"
ADMIN_PASSWORD="${KAFKA_ADMIN_PASSWORD:-admin-secret}"

certs() { # dir: a throwaway CA and a broker certificate for 127.0.0.1 / localhost
  local d=$1
  [ -f "$d/broker.pem" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=therapy-billing test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/broker.key" -out "$d/broker.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/san.ext"
  openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/san.ext" -out "$d/broker.crt" 2>/dev/null
  # Kafka's PEM key store: a PKCS#8 key followed by the certificate chain, in one file.
  { openssl pkcs8 -topk8 -nocrypt -in "$d/broker.key"; cat "$d/broker.crt" "$d/ca.pem"; } >"$d/broker.pem"
  chmod 600 "$d"/*.key "$d/broker.pem"
}

properties() { # dir port controller_port
  local d=$1 port=$2 cport=$3
  cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
# The controller listener speaks TLS with client certificates: only the holder of the broker's
# key (principal User:CN=localhost) can talk to it.
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$d/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$d/ca.pem
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:CN=localhost
log.dirs=$d/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

admin_client_properties() { # dir
  cat <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$1/ca.pem
EOF
}

case "${1:-}" in
  start)
    [ $# -eq 4 ] || { echo "usage: $0 start DIR PORT CONTROLLER_PORT" >&2; exit 2; }
    d=$(mkdir -p "$2" && cd "$2" && pwd)
    certs "$d"
    properties "$d" "$3" "$4" >"$d/server.properties"
    admin_client_properties "$d" >"$d/admin.properties"
    if [ ! -f "$d/data/meta.properties" ]; then
      cid=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
      java -Xmx256m -cp "$LIBS/*" kafka.tools.StorageTool format --standalone -t "$cid" -c "$d/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PASSWORD]" >"$d/format.log" 2>&1
    fi
    exec java -Xms128m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Dlog4j2.configurationFile="$ROOT/stack/kafka/log4j2.properties" -cp "$LIBS/*" kafka.Kafka "$d/server.properties"
    ;;
  apply)
    [ $# -eq 3 ] || { echo "usage: $0 apply BOOTSTRAP DIR < spec" >&2; exit 2; }
    exec java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$LIBS/*" "$ROOT/stack/kafka/KafkaSecurity.java" "$2" "$3/admin.properties"
    ;;
  *)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
