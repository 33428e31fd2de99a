#!/usr/bin/env bash
# Starts the machine's PostgreSQL (Debian cluster 15/main), makes sure a test role and
# database exist, and prints the DSN for ALEPH_TEST_POSTGRES. Needs root (or the
# postgres user). Usage: export ALEPH_TEST_POSTGRES=$(scripts/postgres-test-env.sh)
set -euo pipefail
ver=${PG_VERSION:-15}
cluster=${PG_CLUSTER:-main}
if ! pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c && $4=="online" {found=1} END {exit !found}'; then
	pg_ctlcluster "$ver" "$cluster" start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $3}')
psql_as_postgres() { su postgres -c "psql -v ON_ERROR_STOP=1 -qAt -p $port $*"; }
for i in $(seq 1 50); do psql_as_postgres "-c 'select 1'" >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$(psql_as_postgres "-c \"select 1 from pg_roles where rolname='aleph'\"")" != "1" ]; then
	psql_as_postgres "-c \"create role aleph login password 'aleph' createdb\"" >&2
fi
if [ "$(psql_as_postgres "-c \"select 1 from pg_database where datname='aleph_test'\"")" != "1" ]; then
	psql_as_postgres "-c \"create database aleph_test owner aleph\"" >&2
fi
echo "postgres://aleph:aleph@127.0.0.1:${port}/aleph_test?sslmode=disable"
