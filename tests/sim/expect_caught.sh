#!/bin/sh
# Negative control: runs a simulator (meridian-sim or meridian-sim-txn) with a mutant or a
# broken variant and passes only if it is caught as a violation (exit status 1 and
# "violations: V" with V >= 1), not as a crash, a sanitizer abort, or a mere liveness
# failure. With EXPECT set, some FAIL line must also contain it (e.g. the checker's
# "not strictly serializable", so that a broken transaction protocol is caught by the
# consistency checker and not by something incidental); it is an extended regular
# expression, so "a|b" accepts either. With FORBID set, no FAIL line may match it (e.g.
# "nor serializable": a control that may cost real-time order only).
# usage: [EXPECT=TEXT] [FORBID=TEXT] expect_caught.sh SIM ARGS...
sim=$1
shift
out=$("$sim" "$@")
rc=$?
last=$(printf '%s\n' "$out" | tail -n 1)
first_fail=$(printf '%s\n' "$out" | grep -m1 '^FAIL seed')
echo "$first_fail"
echo "$last"
if [ "$rc" -ne 1 ]; then
    echo "expect_caught: exit status $rc, want 1" >&2
    exit 1
fi
if [ -n "$EXPECT" ] && ! printf '%s\n' "$out" | grep '^FAIL seed' | grep -qE "$EXPECT"; then
    echo "expect_caught: no failure says '$EXPECT'" >&2
    exit 1
fi
if [ -n "$FORBID" ] && printf '%s\n' "$out" | grep '^FAIL seed' | grep -qE "$FORBID"; then
    printf '%s\n' "$out" | grep '^FAIL seed' | grep -E "$FORBID" | head -n 3
    echo "expect_caught: a failure says '$FORBID'" >&2
    exit 1
fi
case "$last" in
"seeds: "*", violations: 0,"*)
    echo "expect_caught: mutant not caught" >&2
    exit 1
    ;;
"seeds: "*", violations: "*)
    exit 0
    ;;
esac
echo "expect_caught: no summary line" >&2
exit 1
