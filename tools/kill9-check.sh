#!/usr/bin/env bash
# tools/kill9-check.sh — the crash campaign of docs/RELIABILITY.md: trains a small run once without
# interruption, then again while killing it with SIGKILL at random moments (every other kill waits
# for a checkpoint being written: the run saves every step) and resuming it each time; every fifth
# kill also leaves a half-written last line in metrics.jsonl, as a kill during a log write does. After every kill each checkpoint left must load;
# after every start no temporary file of a killed run may remain; the finished run's last
# checkpoint must be byte-identical to the uninterrupted run's, and its metrics.jsonl must hold the
# same values (timings aside).
#   tools/kill9-check.sh [KILLS (30)] [STEPS (300)] [SEED (random)]
# Needs build/rankclip (make). Exit status 0 when every check held.
set -uo pipefail
cd "$(dirname "$0")/.."
kills=${1:-30}; steps=${2:-300}; seed=${3:-$RANDOM}
bin=$(pwd)/build/rankclip
[ -x "$bin" ] || { echo "kill9-check: $bin not built (make)" >&2; exit 1; }
RANDOM=$seed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--model tiny --loss rankclip --data synthetic:train:256 --batch-size 32 --steps "$steps"
      --save-every 1 --keep-last 2 --log-every 1 --threads 1 --workers 1 --seed 7)
fail() { echo "kill9-check: FAILED: $*" >&2; exit 1; }
# metrics.jsonl without the fields that measure time
values() { sed -E 's/,"(images_per_s|time_s)":[^,}]*//g' "$1"; }

echo "kill9-check: $kills kills over a $steps-step run (seed $seed), in $work"
"$bin" train "${args[@]}" --out "$work/ref" >"$work/ref.log" 2>&1 || fail "the uninterrupted run: $(tail -3 "$work/ref.log")"
final=$(printf 'step_%08d.safetensors' "$steps")

run="$work/run"; done_=0; k=0; mid_save=0; starts=0; tears=0
while [ "$done_" = 0 ]; do
    resume=(); ls "$run"/checkpoints/step_*.safetensors >/dev/null 2>&1 && resume=(--resume "$run")
    starts=$((starts + 1))
    "$bin" train "${args[@]}" --out "$run" "${resume[@]}" >"$work/start$starts.log" 2>&1 &
    pid=$!
    if [ "$k" -lt "$kills" ]; then
        # odd kills: a moment between 0.3 and 3.3 s after the start (start-up, steps, saves);
        # even kills: after 0.3 s, the first moment a checkpoint is being written
        sleep "$((RANDOM % 3)).$((RANDOM % 10))$((RANDOM % 10))"; sleep 0.3
        if [ $((k % 2)) = 1 ]; then
            for _ in $(seq 2000); do
                ls "$run"/checkpoints/ 2>/dev/null | grep -q '\.tmp\.' && break
                kill -0 "$pid" 2>/dev/null || break
            done
        fi
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid"; wait "$pid" 2>/dev/null; k=$((k + 1))
            tmp=$(find "$run" -name '*.tmp.*' | wc -l)
            [ "$tmp" -gt 0 ] && mid_save=$((mid_save + 1))
            for c in "$run"/checkpoints/step_*.safetensors; do
                [ -e "$c" ] || continue
                "$bin" info "$c" >/dev/null 2>&1 || fail "after kill $k, $(basename "$c") does not load"
            done
            last=$(ls "$run"/checkpoints 2>/dev/null | grep -E '^step_[0-9]+\.safetensors$' | tail -1)
            # every fifth kill, as if it had struck while a log line was being written
            torn_note=""
            if [ $((k % 5)) = 0 ] && [ -s "$run/metrics.jsonl" ]; then
                printf '{"type":"train","step":' >>"$run/metrics.jsonl"; tears=$((tears + 1)); torn_note=", a torn log line added"
            fi
            echo "  kill $k at $(date +%T): ${last:-no checkpoint yet}, $tmp temporary file(s) left$torn_note"
            continue
        fi
    fi
    wait "$pid" || fail "start $starts exited with $?: $(tail -3 "$work/start$starts.log")"
    done_=1
done
stray=$(find "$run" -name '*.tmp.*' | wc -l)
[ "$stray" = 0 ] || fail "$stray temporary file(s) left after the run finished"
cmp -s "$work/ref/checkpoints/$final" "$run/checkpoints/$final" ||
    fail "the final checkpoint differs from the uninterrupted run's"
diff <(values "$work/ref/metrics.jsonl") <(values "$run/metrics.jsonl") >"$work/metrics.diff" ||
    fail "metrics.jsonl differs from the uninterrupted run's: $(head -4 "$work/metrics.diff")"
removed=$(grep -h "removed .* stale temporary" "$work"/start*.log | wc -l)
torn=$(grep -h "dropped a half-written" "$work"/start*.log | wc -l)
[ "$torn" = "$tears" ] || fail "$tears torn log lines were added, the starts reported dropping $torn"
sum=$(sha256sum "$run/checkpoints/$final" | cut -c1-16)
echo "kill9-check: passed: $k kills ($mid_save mid-save), $starts starts, $removed start(s) removed temporary files, $torn torn log line(s) added and dropped; final checkpoint sha256 $sum... equal to the uninterrupted run's, metrics equal"
