#!/usr/bin/env bash
# OpenStack Swift's own functional tests, and python-swiftclient's, against a throwaway
# `nefos up`, on the OpenStack endpoint (/object-store/v1): the conformance check behind
# docs/swift.md. Not part of the test suite: some of Swift's tests are about what nefos
# does not have (ACLs, CORS, the part-number parameter) or keeps as the spec has it, so
# read the summary against the last one in docs/swift.md, where each failure has its
# reason, rather than expect it to be clean.
#
#   scripts/swift-functests.sh [DIR] [pytest args...]
#
# DIR (default /var/tmp/nefos-swift-functests) keeps the sources and a venv between runs;
# nefos's data and the reports (DIR/report-*.txt, DIR/summary.txt) are made anew. Needs
# the repository's .venv (make .venv/.installed) and PyPI.
set -euo pipefail

SWIFT_VERSION=2.38.3
SWIFTCLIENT_VERSION=4.11.0
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/var/tmp/nefos-swift-functests}
shift || true
NEFOS="$REPO/.venv/bin/nefos"

[ -x "$NEFOS" ] || { echo "swift-functests: run 'make .venv/.installed' first" >&2; exit 1; }
mkdir -p "$DIR/src"
if [ ! -x "$DIR/venv/bin/python" ]; then
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install --quiet "swift==$SWIFT_VERSION" \
        "python-swiftclient==$SWIFTCLIENT_VERSION" pytest pytest-subtests mock openstacksdk
fi
if [ ! -d "$DIR/src/swift-$SWIFT_VERSION" ]; then
    (cd "$DIR/src" && "$DIR/venv/bin/pip" download --quiet --no-deps --no-binary :all: \
        "swift==$SWIFT_VERSION" "python-swiftclient==$SWIFTCLIENT_VERSION" \
        && for archive in *.tar.gz; do tar xzf "$archive"; done)
    # Their client takes a storage URL of two parts (/v1/AUTH_x); ours has three
    # (/object-store/v1/<uuid>): keep the whole path, and the account as its last part.
    "$DIR/venv/bin/python" - "$DIR/src/swift-$SWIFT_VERSION/test/functional" <<'EOF'
import pathlib, sys
root = pathlib.Path(sys.argv[1])
client = root / "swift_test_client.py"
text = client.read_text()
text = text.replace(
    "self.storage_path = str('/%s/%s' % (x[1], x[2]))", "self.storage_path = str(url.path)"
).replace("self.account_name = str(x[2])", "self.account_name = str(x[-1])")
text = text.replace(
    "return '/' + self.storage_path.split('/')[1]",
    "return self.storage_path.rsplit('/', 1)[0]",
)
client.write_text(text)
for name in ("test_object.py", "test_symlink.py"):
    test = root / name
    test.write_text(test.read_text().replace("path.split('/', 2)[2]", "path.rsplit('/', 1)[1]"))
# test_object's set-up insists on 204 for an account POST, which Pithos answers 202
# (kamaki insists on that): let the set-up pass so the object tests run at all.
test = root / "test_object.py"
test.write_text(
    test.read_text().replace(
        "resp = retry(post, use_account=use_account)\n        resp.read()\n"
        "        self.assertEqual(resp.status, 204)",
        "resp = retry(post, use_account=use_account)\n        resp.read()\n"
        "        self.assertIn(resp.status, (202, 204))",
    )
)
EOF
fi

rm -rf "$DIR/data"
PORT=$("$DIR/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -u NEFOS_CONFIG NEFOS_DATA_DIR="$DIR/data" "$NEFOS" up --port "$PORT" >"$DIR/nefos.log" 2>&1 &
NEFOS_PID=$!
trap 'kill "$NEFOS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/info" && break
    sleep 0.2
done
for user in tester tester2; do
    echo "secret-$user" | NEFOS_DATA_DIR="$DIR/data" "$NEFOS" user create "$user@test.local" \
        --password-stdin >/dev/null
done
# One user per account: Swift's third user (same account, no admin rights) has no
# counterpart in nefos, so its tests are skipped.
cat >"$DIR/test.conf" <<EOF
[func_test]
auth_uri = http://127.0.0.1:$PORT/object-store/v1
auth_version = 1
account = test
username = tester@test.local
password = secret-tester
account2 = test2
username2 = tester2@test.local
password2 = secret-tester2
EOF

: >"$DIR/summary.txt"
run() {
    local where=$1 suite=$2
    shift 2
    (cd "$where" && SWIFT_TEST_CONFIG_FILE="$DIR/test.conf" timeout 1200 \
        "$DIR/venv/bin/python" -m pytest -q -p no:cacheprovider --tb=line "$suite" "$@" \
        >"$DIR/report-$(basename "$suite" .py).txt" 2>&1) || true
    echo "$suite: $(tail -1 "$DIR/report-$(basename "$suite" .py).txt")" | tee -a "$DIR/summary.txt"
}
for suite in tests test_object test_container test_account test_dlo test_slo; do
    run "$DIR/src/swift-$SWIFT_VERSION" "test/functional/$suite.py" "$@"
done
for suite in test_swiftclient test_openstacksdk; do
    run "$DIR/src/python_swiftclient-$SWIFTCLIENT_VERSION" "test/functional/$suite.py" "$@"
done
