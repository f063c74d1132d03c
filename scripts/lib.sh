# The steps Herald's scripts share. Each script starts with
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# which sets ROOT (the checkout, also made the working directory) and BIN (the release
# binaries), and defines:
#
#   say MESSAGE…        a line on stderr, prefixed with the script's name
#   die MESSAGE…        say it, and exit 1
#   now                 seconds since the epoch, with their fraction
#   free_port           a TCP port free on 127.0.0.1 at the moment of asking
#   fresh_database DB   drop database DB (closing its sessions) and create it again, through
#                       $BASE_URL (a database on the same server that is not DB)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
SCRIPT="$(basename "$0")"

say() { printf '[%s] %s\n' "$SCRIPT" "$*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
fresh_database() {
  local db="$1" server="${BASE_URL:?fresh_database needs BASE_URL, a database other than $1}"
  psql "$server" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\"" >/dev/null
}
