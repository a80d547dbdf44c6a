#!/usr/bin/env bash
# A throw-away PostgreSQL with pgvector for development and tests, on loopback, data outside the repository.
#
#   scripts/dev-postgres.sh start    install what is missing, start, create the database; last line: QABOT_PG_DSN=…
#   scripts/dev-postgres.sh status   exit 0 and print QABOT_PG_DSN=… when it runs, exit 3 when it does not
#   scripts/dev-postgres.sh stop     stop it (the data stays in $QABOT_PG_DIR; delete that folder to start afresh)
#
#   export "$(scripts/dev-postgres.sh start | tail -n 1)"
#
# Made for a Debian machine like ours (root, PostgreSQL 15 installed but not running). It installs what is missing:
# PostgreSQL itself, then pgvector: Debian's postgresql-15-pgvector package when the archive has one, otherwise
# built from Debian's pgvector source package (bookworm has none; trixie's source builds against PostgreSQL 15)
# with postgresql-server-dev-15 at the server's own version. Progress goes to stderr, the DSN alone to stdout.
# `start` is idempotent: a running server is reused and only the missing database pieces are created.
#
# Environment: QABOT_PG_DIR (default /tmp/qabot-pg: data, socket, log, password), QABOT_PG_MAJOR (15),
# QABOT_PG_DB (qabot, also the role's name), QABOT_PGVECTOR_SUITE (trixie: where the source package comes from).
set -euo pipefail

PG_DIR=${QABOT_PG_DIR:-/tmp/qabot-pg}
PG_MAJOR=${QABOT_PG_MAJOR:-15}
DB=${QABOT_PG_DB:-qabot}
PGVECTOR_SUITE=${QABOT_PGVECTOR_SUITE:-trixie}
BIN=/usr/lib/postgresql/$PG_MAJOR/bin
DATA=$PG_DIR/data
SOCKET_DIR=$PG_DIR/run
LOG=$PG_DIR/postgres.log
INSTALL_LOG=$PG_DIR/install.log

say() { echo "dev-postgres: $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# Run a PostgreSQL program as the owner of the data folder: postgres refuses to run as root.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

APT_UPDATED=0
apt_install() {
    [[ $EUID -eq 0 ]] || die "$* is missing and installing it needs root (apt-get install $*)"
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt-get update"
        apt-get update >>"$INSTALL_LOG" 2>&1 || die "apt-get update failed; see $INSTALL_LOG"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$INSTALL_LOG" 2>&1
}

ensure_postgres() {
    [[ -x $BIN/postgres ]] && return
    say "installing PostgreSQL $PG_MAJOR"
    apt_install "postgresql-$PG_MAJOR" || die "cannot install postgresql-$PG_MAJOR; see $INSTALL_LOG"
    [[ -x $BIN/postgres ]] || die "postgresql-$PG_MAJOR installed but $BIN/postgres is missing"
}

pgvector_installed() {
    [[ -f /usr/share/postgresql/$PG_MAJOR/extension/vector.control && -f /usr/lib/postgresql/$PG_MAJOR/lib/vector.so ]]
}

ensure_pgvector() {
    pgvector_installed && return
    say "installing pgvector: trying Debian's postgresql-$PG_MAJOR-pgvector"
    if apt_install "postgresql-$PG_MAJOR-pgvector" && pgvector_installed; then
        return
    fi
    say "no package: building pgvector from Debian's source package ($PGVECTOR_SUITE)"
    build_pgvector_from_debian_source
    pgvector_installed || die "pgvector was built but vector.control/vector.so are not where PostgreSQL looks"
}

# A private apt configuration that knows only the deb-src line for pgvector: the machine's own sources stay as
# they are, and no binary package from another release can be installed by accident.
build_pgvector_from_debian_source() {
    local work=$PG_DIR/pgvector-build
    local apt_dir=$work/apt
    rm -rf "$work"
    mkdir -p "$apt_dir/lists/partial" "$work/src"
    cat >"$apt_dir/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $PGVECTOR_SUITE main
EOF
    local apt_options=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$apt_dir/lists")
    apt-get "${apt_options[@]}" update >>"$INSTALL_LOG" 2>&1 || die "cannot read Debian's source index; see $INSTALL_LOG"
    (cd "$work/src" && apt-get "${apt_options[@]}" source --download-only pgvector >>"$INSTALL_LOG" 2>&1) ||
        die "cannot download Debian's pgvector source package; see $INSTALL_LOG"
    local dsc
    dsc=$(ls "$work"/src/pgvector_*.dsc | head -n 1)
    dpkg-source --no-check -x "$dsc" "$work/src/pgvector" >>"$INSTALL_LOG" 2>&1 || die "cannot unpack $dsc"
    # The build needs the server headers of the installed server's exact version (no upgrade of the server).
    local version
    version=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null || true)
    say "installing the build tools (postgresql-server-dev-$PG_MAJOR ${version:-latest}, make, gcc)"
    apt_install make gcc "postgresql-server-dev-$PG_MAJOR${version:+=$version}" ||
        apt_install make gcc "postgresql-server-dev-$PG_MAJOR" ||
        die "cannot install postgresql-server-dev-$PG_MAJOR; see $INSTALL_LOG"
    say "compiling pgvector $(basename "$dsc" .dsc | cut -d_ -f2)"
    # OPTFLAGS="" as in Debian's own build: no -march=native, so the library runs on any x86-64 machine.
    make -C "$work/src/pgvector" PG_CONFIG="$BIN/pg_config" OPTFLAGS="" -j"$(nproc)" >>"$INSTALL_LOG" 2>&1 ||
        die "compiling pgvector failed; see $INSTALL_LOG"
    make -C "$work/src/pgvector" PG_CONFIG="$BIN/pg_config" OPTFLAGS="" install >>"$INSTALL_LOG" 2>&1 ||
        die "installing pgvector failed; see $INSTALL_LOG"
    rm -rf "$work"
}

running() {
    [[ -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

prepare_folder() {
    mkdir -p "$PG_DIR"
    chmod 755 "$PG_DIR"
    : >>"$INSTALL_LOG"
    if [[ $EUID -eq 0 ]]; then
        # postgres must be able to reach its folders: every parent needs the x bit for others.
        runuser -u postgres -- test -x "$PG_DIR" || die "$PG_DIR is not reachable by the postgres user; set QABOT_PG_DIR"
        mkdir -p "$SOCKET_DIR"
        chown postgres:postgres "$SOCKET_DIR"
        touch "$LOG" && chown postgres:postgres "$LOG"
    else
        mkdir -p "$SOCKET_DIR"
    fi
}

init_cluster() {
    [[ -f $DATA/PG_VERSION ]] && return
    say "creating a cluster in $DATA"
    mkdir -p "$DATA"
    [[ $EUID -eq 0 ]] && chown postgres:postgres "$DATA"
    # Local socket: the OS user (peer); TCP on loopback: passwords (scram), for the DSN's role.
    as_owner "$BIN/initdb" -D "$DATA" --username=postgres --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >>"$INSTALL_LOG" 2>&1 || die "initdb failed; see $INSTALL_LOG"
    if [[ $EUID -ne 0 ]]; then  # peer auth maps the OS user to the role of the same name
        sed -i "s/^local\(\s\+all\s\+all\s\+\)peer/local\1trust/" "$DATA/pg_hba.conf"
    fi
}

start_server() {
    running && return
    local attempt port
    for attempt in 1 2 3 4 5; do
        port=$((40000 + RANDOM % 20000))
        # the port of the last run when it is still free, so that a restart keeps the DSN
        if [[ $attempt -eq 1 && -s $PG_DIR/port ]]; then port=$(cat "$PG_DIR/port"); fi
        port_is_free "$port" || continue
        say "starting PostgreSQL $PG_MAJOR on 127.0.0.1:$port"
        if as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $SOCKET_DIR" >>"$INSTALL_LOG" 2>&1; then
            echo "$port" >"$PG_DIR/port"
            return
        fi
        say "could not start on port $port (attempt $attempt); see $LOG"
    done
    die "PostgreSQL did not start; see $LOG"
}

psql_admin() {
    as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$(cat "$PG_DIR/port")" -U postgres "$@"
}

create_database() {
    local password_file=$PG_DIR/password
    if [[ ! -s $password_file ]]; then
        (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$password_file")
    fi
    local password
    password=$(cat "$password_file")
    # Role, database and extension are created only when missing; the password is (re)set every time so that
    # a new password file always matches the role.
    psql_admin -d postgres <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$DB') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB')\gexec
ALTER ROLE "$DB" PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', '$DB', '$DB')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB')\gexec
SQL
    psql_admin -d "$DB" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS vector" ||
        die "cannot create the vector extension"
}

print_dsn() {
    echo "QABOT_PG_DSN=postgresql://$DB:$(cat "$PG_DIR/password")@127.0.0.1:$(cat "$PG_DIR/port")/$DB"
}

case ${1:-} in
    start)
        prepare_folder
        ensure_postgres
        ensure_pgvector
        init_cluster
        start_server
        create_database
        say "running; data in $DATA, log in $LOG"
        print_dsn
        ;;
    status)
        if running && [[ -s $PG_DIR/port && -s $PG_DIR/password ]]; then
            say "running on 127.0.0.1:$(cat "$PG_DIR/port"), data in $DATA"
            print_dsn
        else
            say "not running (data folder $DATA)"
            exit 3
        fi
        ;;
    stop)
        if running; then
            as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
            say "stopped (data kept in $DATA)"
        else
            say "not running"
        fi
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
