#!/usr/bin/env bash
# Builds the Gradescope autograder zip for one assignment.
#
#   grading/gradescope/make-zip.sh [--rev REV] [--visibility V] [--out FILE] [N …]
#
# N … are the exercise numbers the assignment grades (none: all of them). The zip holds
# setup.sh, run_autograder, config.sh (the choices above) and ipclab/: the course at REV
# (default HEAD, i.e. what is committed) without solutions/ and book/, since the students'
# code runs in the same container and could read them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
course="$(cd "$here/../.." && pwd)"
rev=HEAD
visibility=visible
out="$PWD/autograder.zip"
exercises=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rev) rev="$2"; shift 2 ;;
        --visibility) visibility="$2"; shift 2 ;;
        --out) out="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) exercises+=("$1"); shift ;;
    esac
done

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$here/setup.sh" "$here/run_autograder" "$stage/"
chmod +x "$stage/setup.sh" "$stage/run_autograder"
{
    echo "# Written by make-zip.sh from $(git -C "$course" rev-parse --short "$rev")."
    echo "IPCLAB_EXERCISES=\"${exercises[*]:-}\""
    echo "IPCLAB_VISIBILITY=\"$visibility\""
    echo "RUST_VERSION=\"$(rustc --version | cut -d' ' -f2)\""
} >"$stage/config.sh"
git -C "$course" archive --format=tar --prefix=ipclab/ "$rev" -- . ':!solutions' ':!book' |
    tar -x -C "$stage"
rm -f "$out"
(cd "$stage" && zip -qr "$out" .)
echo "wrote $out (exercises: ${exercises[*]:-all})"
