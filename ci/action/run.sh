#!/usr/bin/env bash
# shellcheck disable=SC2016  # backticks in printf formats are Markdown code spans, not commands
# The logic of the parity GitHub Action (action.yml at the repository root; docs/action.md).
# It runs outside GitHub too, which is how tests/action/test_action.py tests it.
#
#   1. install parity      INPUT_INSTALL: wheel:PATH | pip:SPEC (default pip:parity) | binary:PATH
#   2. run it              check mode:  parity check SUITES --backend B... [--shard I/N] ARGS
#                                       --format json --out REPORT_DIR/report.json
#                          merge mode (INPUT_MERGE set): parity merge FILES... --format json
#                                       --out REPORT_DIR/report.json
#   3. render the report   parity merge REPORT_DIR/report.json --format markdown|junit|html
#                          (a merge of one report re-renders it): report.md, junit.xml, report.html
#   4. report              the Markdown appended to $GITHUB_STEP_SUMMARY, outputs written to
#                          $GITHUB_OUTPUT (each skipped when the variable is unset)
#   5. exit                with parity's exit code (0 pass, 1 mismatch, 2 could not evaluate),
#                          whatever the rendering did; 0 with INPUT_FAIL_ON=never
#
# Inputs, from the environment (action.yml passes each input explicitly; names use `_`):
#   INPUT_SUITES  INPUT_BACKENDS  INPUT_ARGS  INPUT_SHARD  INPUT_MERGE  INPUT_INSTALL
#   INPUT_REPORT_DIR  INPUT_ARTIFACT_NAME  INPUT_FAIL_ON
# SUITES, BACKENDS, ARGS and MERGE are split into words like a shell does (spaces, tabs and
# newlines separate; single quotes, double quotes and backslashes quote; nothing is expanded
# or executed), so `args: --gate 'probs:top1_agreement>=0.99'` is one flag and its value.
# Also read: PARITY_ACTION_PYTHON (the Python that makes the venv for pip:/wheel:; default
# python3), RUNNER_TEMP (where that venv goes), GITHUB_STEP_SUMMARY, GITHUB_OUTPUT,
# GITHUB_ACTIONS (workflow commands such as ::group:: only when it is `true`).
#
# A problem of the action itself (a bad input, an install that fails, a merge pattern that
# matches no file) is reported like a run that could not evaluate: exit 2, verdict `error`,
# a line in the job summary, whatever fail-on says (nothing was checked).
set -euo pipefail

suites_in=${INPUT_SUITES:-}
backends_in=${INPUT_BACKENDS:-}
args_in=${INPUT_ARGS:-}
shard=${INPUT_SHARD:-}
merge_in=${INPUT_MERGE:-}
install=${INPUT_INSTALL:-}
report_dir=${INPUT_REPORT_DIR:-}
artifact_name=${INPUT_ARTIFACT_NAME:-}
fail_on=${INPUT_FAIL_ON:-}

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }
shard=$(trim "$shard")
install=$(trim "$install")
report_dir=$(trim "$report_dir")
artifact_name=$(trim "$artifact_name")
fail_on=$(trim "$fail_on")
[[ -n $install ]] || install=pip:parity
[[ -n $report_dir ]] || report_dir=parity-report
[[ -n $fail_on ]] || fail_on=fail

# The artifact name first: action.yml's upload step reads it even when this script stops
# early. Default parity-report, parity-report-shard-I-of-N for a shard (artifact names
# must differ between the jobs of a matrix and may not hold `/`).
if [[ -z $artifact_name ]]; then
  artifact_name=parity-report
  if [[ -z ${merge_in//[[:space:]]/} && -n $shard ]]; then
    artifact_name+="-shard-${shard//\//-of-}"
  fi
fi
artifact_name=${artifact_name//[^A-Za-z0-9._-]/-}

on_github() { [[ ${GITHUB_ACTIONS:-} == true ]]; }
group() { if on_github; then echo "::group::$*"; else echo "== $*"; fi; }
endgroup() { if on_github; then echo "::endgroup::"; fi; }

# --- outputs and job summary -------------------------------------------------------------
exit_code=""        # parity's exit code (the run's, check or merge), or 2 for an action error
verdict=""
report_json="" junit="" html="" markdown=""
ran=0               # 1 once parity ran: its exit code is the result from then on
finished=0          # 1 once the outputs are written
action_error=""     # the message of an error of the action itself

set_output() { # NAME VALUE: name=value, or the delimiter form when VALUE holds a newline
  local name=$1 value=$2 delim
  [[ -n ${GITHUB_OUTPUT:-} ]] || return 0
  if [[ $value == *$'\n'* || $value == *$'\r'* ]]; then
    delim="parity_output_$RANDOM$RANDOM$RANDOM"
    while [[ $value == *"$delim"* ]]; do delim+="_$RANDOM"; done
    printf '%s<<%s\n%s\n%s\n' "$name" "$delim" "$value" "$delim" >>"$GITHUB_OUTPUT"
  else
    printf '%s=%s\n' "$name" "$value" >>"$GITHUB_OUTPUT"
  fi
}

summary() { # append stdin to the job summary (discarded when there is none)
  if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then cat >>"$GITHUB_STEP_SUMMARY"; else cat >/dev/null; fi
}

write_outputs() {
  set_output exit-code "$exit_code"
  set_output verdict "$verdict"
  set_output report-json "$report_json"
  set_output junit "$junit"
  set_output html "$html"
  set_output markdown "$markdown"
  set_output artifact-name "$artifact_name"
}

# shellcheck disable=SC2329  # the EXIT trap calls it
on_exit() {
  local rc=$?
  [[ -z ${tmp:-} ]] || rm -rf -- "$tmp"
  if (( finished )); then return 0; fi
  trap - EXIT
  if (( ran )); then
    # Something after the run failed (e.g. writing the job summary): the verdict stands.
    echo "parity action: warning: a step after parity $mode failed (exit $rc); parity's exit code $exit_code stands" >&2
    write_outputs || true
    if [[ $fail_on == never ]]; then exit 0; fi
    exit "$exit_code"
  fi
  # Stopped before parity's verdict: an error of the action (die, or a failing command).
  [[ -n $action_error ]] || action_error="the action stopped (exit $rc) before parity gave a verdict; see the log"
  exit_code=2 verdict=error
  echo "parity action: error: $action_error" >&2
  if on_github; then echo "::error title=parity action::${action_error//$'\n'/ }"; fi
  {
    printf '## ⚠️ parity: ERROR — the action could not run parity\n\n'
    printf '```text\n%s\n```\n\n' "$action_error"
  } | summary || true
  write_outputs || true
  exit 2
}
tmp=""
mode=check
trap on_exit EXIT

die() { action_error=$*; exit 2; }

# --- input parsing -----------------------------------------------------------------------
tmp=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/parity-action.XXXXXX")

glob_into() { # ARRAY_NAME PATTERN: the files PATTERN matches (** included), none when none
  local -n _matches=$1
  local IFS=
  shopt -s nullglob globstar
  # shellcheck disable=SC2206  # the pattern is meant to expand here (glob only: IFS is empty)
  _matches=($2)
  shopt -u nullglob globstar
}

split_words() { # ARRAY_NAME INPUT_NAME TEXT
  local -n _words=$1
  local what=$2 text=$3
  _words=()
  [[ -n ${text//[[:space:]]/} ]] || return 0
  if ! printf '%s' "$text" | xargs printf '%s\0' >"$tmp/words" 2>"$tmp/words.err"; then
    die "$what: cannot split into words: $(tr '\n' ' ' <"$tmp/words.err")"
  fi
  mapfile -d '' -t _words <"$tmp/words"
}

case $fail_on in
  fail|never) ;;
  *) die "fail-on: expected fail or never, got '$fail_on'" ;;
esac

declare -a suites backends extra patterns
split_words suites suites "$suites_in"
split_words backends backends "$backends_in"
split_words extra args "$args_in"
split_words patterns merge "$merge_in"
(( ${#patterns[@]} == 0 )) || mode=merge

for a in "${extra[@]}"; do
  case $a in
    --format|--format=*|--out|--out=*)
      die "args: $a is set by the action (--format json --out REPORT_DIR/report.json; the other formats are rendered from it)" ;;
  esac
done
if [[ $mode == check ]]; then
  (( ${#suites[@]} )) || die "suites: no suite given (or set merge to merge JSON reports)"
else
  if (( ${#suites[@]} + ${#backends[@]} + ${#extra[@]} )) || [[ -n $shard ]]; then
    echo "parity action: warning: merge mode: suites, backends, args and shard are ignored" >&2
  fi
fi

mkdir -p -- "$report_dir" || die "report-dir: cannot create '$report_dir'"
report_dir=$(cd -- "$report_dir" && pwd)
json=$report_dir/report.json
md=$report_dir/report.md
xml=$report_dir/junit.xml
htm=$report_dir/report.html
log=$report_dir/parity.log
# A report left by an earlier run in the same directory must never pass for this run's.
rm -f -- "$json" "$md" "$xml" "$htm" "$log"

# --- install -----------------------------------------------------------------------------
install_parity() {
  local kind=${install%%:*} what=${install#*:}
  [[ $install == *:* && -n $what ]] || die "install: expected wheel:PATH, pip:SPEC or binary:PATH, got '$install'"
  case $kind in
    binary)
      [[ -f $what && -x $what ]] || die "install: binary:$what is not an executable file"
      PARITY=$what
      [[ $PARITY == */* ]] || PARITY=./$PARITY
      ;;
    pip|wheel)
      local python=${PARITY_ACTION_PYTHON:-}
      [[ -n $python ]] || python=$(command -v python3 || command -v python || true)
      [[ -n $python ]] || die "install: $kind: needs Python (python3 on PATH, or PARITY_ACTION_PYTHON)"
      local -a spec
      if [[ $kind == wheel ]]; then
        local -a found
        glob_into found "$what"
        (( ${#found[@]} == 1 )) || die "install: wheel:$what matches ${#found[@]} files, not one: ${found[*]:-none}"
        spec=("${found[0]}")
      else
        split_words spec install "$what"
      fi
      local venv=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/parity-action-venv
      "$python" -m venv --clear "$venv" || die "install: '$python -m venv $venv' failed"
      "$venv/bin/python" -m pip install --disable-pip-version-check --no-input "${spec[@]}" \
        || die "install: pip install ${spec[*]} failed (see the log)"
      PARITY=$venv/bin/parity
      [[ -x $PARITY ]] || die "install: ${spec[*]} installed no parity executable ($PARITY)"
      ;;
    *) die "install: expected wheel:PATH, pip:SPEC or binary:PATH, got '$install'" ;;
  esac
}

group "install parity ($install)"
install_parity
"$PARITY" --version || die "install: '$PARITY --version' failed"
endgroup

# --- run ---------------------------------------------------------------------------------
if [[ $mode == check ]]; then
  cmd=("$PARITY" check "${suites[@]}")
  for b in "${backends[@]}"; do cmd+=(--backend "$b"); done
  [[ -z $shard ]] || cmd+=(--shard "$shard")
  cmd+=("${extra[@]}" --format json --out "$json")
else
  declare -a files=()
  out_real=$(realpath -m -- "$json")
  for p in "${patterns[@]}"; do
    declare -a matched=()
    glob_into matched "$p"
    (( ${#matched[@]} )) || die "merge: '$p' matches no file (give every shard's report: a missing shard is never a pass)"
    for f in "${matched[@]}"; do
      [[ $(realpath -m -- "$f") == "$out_real" ]] || files+=("$f")
    done
  done
  (( ${#files[@]} )) || die "merge: '$merge_in' matches only this action's own output, $json"
  cmd=("$PARITY" merge "${files[@]}" --format json --out "$json")
fi

group "parity $mode"
printf '%q ' "${cmd[@]}"; echo
set +e
{ "${cmd[@]}" 2>&1 1>&3 3>&- | tee "$log" >&2; rc=${PIPESTATUS[0]}; } 3>&1
set -e
endgroup
exit_code=$rc
case $rc in
  0) verdict=pass ;;
  1) verdict=fail ;;
  *) verdict=error ;;
esac
ran=1

# --- render (never changes the exit code) ------------------------------------------------
render_notes=""
render() { # FORMAT FILE
  local fmt=$1 out=$2 rrc=0
  "$PARITY" merge "$json" --format "$fmt" --out "$out" 2>"$tmp/render.err" || rrc=$?
  if (( rrc != rc )); then
    render_notes+="- \`parity merge --format $fmt\` exited $rrc (the run exited $rc): $({ grep -v '^warning:' "$tmp/render.err" || true; } | tr '\n' ' ')"$'\n'
    cat "$tmp/render.err" >&2
  fi
  [[ -s $out ]] || rm -f -- "$out"
}
if [[ -s $json ]]; then
  group "render the report"
  render markdown "$md"
  render junit "$xml"
  render html "$htm"
  endgroup
  report_json=$json
else
  rm -f -- "$json"
fi
[[ ! -f $md ]] || markdown=$md
[[ ! -f $xml ]] || junit=$xml
[[ ! -f $htm ]] || html=$htm

{
  if [[ -n $render_notes ]]; then
    # e.g. an empty shard: `check --shard` passes it (exit 0), while `parity merge` judges a
    # report that holds no case an error; the step's result is the run's exit code.
    printf '## parity %s: %s (exit %s)\n\n' "$mode" "${verdict^^}" "$rc"
    printf '> **Note:** this result is the exit code of `parity %s`; re-rendering its report with `parity merge` said otherwise, so the rendered report below judges differently:\n\n%s\n' \
      "$mode" "$render_notes"
  fi
  if [[ -n $markdown ]]; then
    cat -- "$md"
    printf '\n'
  else
    printf '## ⚠️ parity: %s — %s exited %s' "${verdict^^}" "$mode" "$rc"
    if [[ -n $report_json ]]; then printf ', its report could not be rendered\n\n'; else printf ' without a report\n\n'; fi
    printf '```text\n'
    tail -n 40 -- "$log" 2>/dev/null || true
    printf '```\n\n'
  fi
  if [[ $fail_on == never && $rc != 0 ]]; then
    printf '> **Note:** `fail-on: never`: this step passes although parity exited %s (%s).\n\n' "$rc" "$verdict"
  fi
} | summary

finished=1
write_outputs
if on_github && (( rc != 0 )); then
  echo "::error title=parity::parity $mode exited $rc ($verdict); report: $report_dir"
fi
echo "parity action: $mode exited $rc ($verdict); reports in $report_dir"
if [[ $fail_on == never ]]; then exit 0; fi
exit "$rc"
