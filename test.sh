#!/usr/bin/env bash
# The whole test suite, as README.md gives it. Installs and starts what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")"

postgres_answers() {
  for _ in $(seq 1 30); do su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && return; sleep 1; done
}

# PostgreSQL for the storage suite: Debian's package, started here when no server answers.
ensure_postgres() {
  if [ -n "${NURTURE_TEST_POSTGRES:-}" ]; then return; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "test.sh: installing PostgreSQL (Debian's postgresql package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local version
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | grep -q "^$version main"; then pg_createcluster "$version" main >/dev/null; fi
  if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  postgres_answers
  # Tests run side by side, each with a database and connection pools of its own: Debian's 100 ran out ("too many
  # clients already"). Raised once; it takes a restart.
  if [ "$(su postgres -c "psql -qAtc 'show max_connections'")" -lt 300 ]; then
    su postgres -c "psql -qAtc 'alter system set max_connections = 300'" >/dev/null
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart
    postgres_answers
  fi
  su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='nurture'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"create role nurture login superuser password 'nurture'\""
  # Each storage test makes its own database; drop the ones earlier runs left behind.
  su postgres -c "psql -qAtc \"select datname from pg_database where datname like 'nurture_test_%'\"" \
    | while read -r db; do su postgres -c "dropdb --if-exists $db" || true; done
  export NURTURE_TEST_POSTGRES="Host=127.0.0.1;Port=5432;Username=nurture;Password=nurture;Database=postgres"
}

# RabbitMQ for the messaging tests: Testcontainers starts one where a Docker engine answers; otherwise Debian's
# rabbitmq-server, installed and started here when missing.
ensure_rabbitmq() {
  if [ -n "${NURTURE_TEST_RABBITMQ:-}" ]; then return; fi
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then return; fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "test.sh: installing RabbitMQ (Debian's rabbitmq-server package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    rabbitmq-server -detached
    for _ in $(seq 1 90); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
  fi
  export NURTURE_TEST_RABBITMQ="amqp://guest:guest@localhost:5672/"
}

# promtool (Debian's prometheus package) checks the /metrics exposition; Chromium renders the dashboard headless.
ensure_tools() {
  if ! command -v promtool >/dev/null 2>&1; then
    echo "test.sh: installing promtool (Debian's prometheus package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    echo "test.sh: installing Chromium (Debian's chromium package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

if [ "${NURTURE_TEST_NO_SERVICES:-}" != "1" ]; then
  ensure_postgres
  ensure_rabbitmq
  ensure_tools
fi

dotnet build Nurture.sln -c Release -warnaserror
set +e
dotnet test Nurture.sln -c Release --no-build 2>&1 | tee /tmp/nurture-test.log
status=${PIPESTATUS[0]}
set -e
count() { grep -oE "$1: +[0-9]+" /tmp/nurture-test.log | awk '{ n += $2 } END { print n + 0 }'; }
passed=$(count Passed); failed=$(count Failed); skipped=$(count Skipped)
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
