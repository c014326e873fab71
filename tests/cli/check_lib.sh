# Shared checks for the CLI end-to-end scripts (sourced). The script sets $work (a scratch folder) first; each check
# counts in $checks and $failures, and check_summary ends the script with the verdict.
checks=0
failures=0

check() {  # check NAME EXPECTED_STATUS COMMAND... ; stdout and stderr kept in $work/out and $work/err
  local name=$1 expected=$2
  shift 2
  checks=$((checks + 1))
  "$@" >"$work/out" 2>"$work/err"
  local status=$?
  if [[ $status -ne $expected ]]; then
    echo "FAIL $name: exit $status, expected $expected"; tail -n 40 "$work/out" "$work/err" | sed 's/^/  | /'
    failures=$((failures + 1))
    return 1
  fi
}
expect_text() {  # expect_text NAME FILE TEXT
  checks=$((checks + 1))
  if ! grep -qF -- "$3" "$2"; then
    echo "FAIL $1: '$3' not in output"; sed 's/^/  | /' "$2"
    failures=$((failures + 1))
  fi
}
expect_no_text() {  # expect_no_text NAME FILE TEXT
  checks=$((checks + 1))
  if grep -qF -- "$3" "$2"; then
    echo "FAIL $1: '$3' unexpectedly in output"; sed 's/^/  | /' "$2"
    failures=$((failures + 1))
  fi
}
expect_one_line() {  # expect_one_line NAME FILE
  checks=$((checks + 1))
  local lines
  lines=$(wc -l <"$2")
  if [[ $lines -ne 1 ]]; then
    echo "FAIL $1: expected exactly one line on stderr, got $lines"; sed 's/^/  | /' "$2"
    failures=$((failures + 1))
  fi
}
check_summary() {  # the last command of a script: prints the counts, exits non-zero on any failure
  echo "$((checks - failures)) of $checks checks passed, $failures failed"
  [[ $failures -eq 0 ]]
}
