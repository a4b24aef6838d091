#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image (Ubuntu), with the
# autograder zip unpacked in /autograder/source. It installs Rust the way the course asks students
# to (rustup), then builds the grader and grades the untouched starters once, so that the
# dependencies are compiled into the image and each submission only compiles the student's code.
#
# rustup's installer and the crates come from the internet: fine on Gradescope, which builds the
# image online. (This script cannot be tested offline; run_autograder can: see README.md.)
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
COURSE="${IPCLAB_COURSE:-$ROOT/source/ipclab}"
# shellcheck disable=SC1091
[ -f "$ROOT/source/config.sh" ] && . "$ROOT/source/config.sh"
RUST_VERSION="${RUST_VERSION:-stable}"

export DEBIAN_FRONTEND=noninteractive
apt-get update
# A C toolchain for linking, and the tools some exercises' tests start (ps, ipcs, strace are not
# needed by the suites; procps and util-linux are in the base image).
apt-get install -y --no-install-recommends ca-certificates curl build-essential
if ! command -v cargo >/dev/null; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --default-toolchain "$RUST_VERSION"
fi
# shellcheck disable=SC1091
. "$HOME/.cargo/env"

cd "$COURSE"
cargo fetch --locked
cargo build --locked --package xtask
# Grading the course's own exercises/ (the untouched starters) compiles every dependency into
# target/grading and records each suite's list of graded tests.
exercises=()
for n in ${IPCLAB_EXERCISES:-}; do exercises+=(--exercise "$n"); done
cargo xtask grade "$COURSE" "${exercises[@]}" --target-dir "$COURSE/target/grading" --format json --out /dev/null
