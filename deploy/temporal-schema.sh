#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the version
# the admin-tools image ships, before the server starts. Safe to run on every start:
# an existing database is kept and update-schema applies only missing versions, so a
# newer TEMPORAL_ADMINTOOLS_VERSION (with the same TEMPORAL_VERSION) migrates in place.
set -eu

SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12
sql() {
  temporal-sql-tool --plugin postgres12 --ep "${POSTGRES_SEEDS}" -p "${DB_PORT}" \
    -u "${POSTGRES_USER}" "$@"  # the password comes from SQL_PASSWORD
}

for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*}
  dir=${pair##*:}
  sql --db "$db" create
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$SCHEMA_ROOT/$dir/versioned"
  echo "temporal-schema: $db is current"
done
