# Smoke test of the Windows installer, the same checks as packaging/linux/smoke-test (see
# packaging/smoke-checks.sh): a silent install into a throwaway folder, then, with a clean
# environment (no venv, no source tree, no PYTHON* on PATH), `vetted --version`; `vetted verify`
# on signed test vectors (0) and a tampered copy (1); the app offscreen to its first paint; a
# tiny catalog signed with the installed vetted-admin around SmolLM2, pulled and chatted with;
# then the uninstaller, which must leave the user's data in place.
#   packaging\windows\smoke-test.ps1 -Setup dist\vetted-X-windows-x86_64-setup.exe -Gguf <SmolLM2 .gguf>
param(
    [Parameter(Mandatory)] [string]$Setup,
    [Parameter(Mandatory)] [string]$Gguf
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$Repo = Resolve-Path "$PSScriptRoot\..\.."
$Oms = "$Repo\tests\fixtures\oms"
$Version = [regex]::Match((Split-Path $Setup -Leaf), '^vetted-([^-]+)-windows').Groups[1].Value
$T = Join-Path ([IO.Path]::GetTempPath()) ("vetted-smoke-" + [guid]::NewGuid().ToString("N").Substring(0, 8))
New-Item -ItemType Directory -Path $T, "$T\home" | Out-Null
$script:Passed = 0
function Ok([string]$What) { $script:Passed++; Write-Output "ok: $What" }
function Fail([string]$What) { Write-Output "FAILED: $What"; Write-Output "smoke-test: $($script:Passed) passed, 1 failed"; exit 1 }

# 0. Install (per-user, silent) into a throwaway folder.
$AppDir = "$T\app"
$p = Start-Process -FilePath $Setup -Wait -PassThru -ArgumentList @("/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART",
    "/CURRENTUSER", "/DIR=`"$AppDir`"", "/TASKS=`"`"")
if ($p.ExitCode -ne 0) { Fail "installer exited $($p.ExitCode)" }
if (-not (Test-Path "$AppDir\vetted.exe") -or -not (Test-Path "$AppDir\vetted-admin.exe") -or
    -not (Test-Path "$AppDir\unins000.exe")) { Fail "installed layout" }
$StartMenu = Join-Path ([Environment]::GetFolderPath("Programs")) "Vetted.lnk"
if (-not (Test-Path $StartMenu)) { Fail "Start-menu entry $StartMenu" }
Ok "installed: vetted.exe, vetted-admin.exe, uninstaller, Start-menu entry"

# The user's environment: nothing from the build.
$Clean = @{ "PATH" = "$env:SystemRoot\system32;$env:SystemRoot"; "VETTED_HOME" = "$T\vetted-home";
            "QT_QPA_PLATFORM" = "offscreen"; "USERPROFILE" = "$T\home"; "HOME" = "$T\home" }
function Expect([int]$Want, [string]$Name, [string]$Exe, [string[]]$ArgList, [hashtable]$Extra = @{}) {
    $psi = New-Object Diagnostics.ProcessStartInfo $Exe
    foreach ($a in $ArgList) { [void]$psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
    $psi.WorkingDirectory = "$T\home"
    foreach ($k in @($psi.Environment.Keys)) {
        if ($k -match '^(PATH|PYTHON.*|VIRTUAL_ENV|CONDA.*)$') { $psi.Environment.Remove($k) | Out-Null } }
    foreach ($k in @($Clean.Keys) + @($Extra.Keys)) { $psi.Environment[$k] = if ($Extra.ContainsKey($k)) { $Extra[$k] } else { $Clean[$k] } }
    $proc = [Diagnostics.Process]::Start($psi)
    $errTask = $proc.StandardError.ReadToEndAsync()
    $out = $proc.StandardOutput.ReadToEnd(); $proc.WaitForExit(); $err = $errTask.Result
    Set-Content -Path "$T\$Name" -Value $out -NoNewline
    if ($proc.ExitCode -ne $Want) { Write-Output $out $err; Fail "$Name exited $($proc.ExitCode), expected $Want" }
    return $out.Trim()
}

$V = Expect 0 "version" "$AppDir\vetted.exe" @("--version")
if ($V -ne "vetted $Version") { Fail "--version printed $V" }
Ok "vetted --version: $V"

Copy-Item -Recurse "$Oms\v1.1.0-elliptic-key", "$Oms\v1.1.0-sigstore", "$Oms\keys" $T
$o = Expect 0 "verify-key" "$AppDir\vetted.exe" @("verify", "$T\v1.1.0-elliptic-key", "--signature",
    "$T\v1.1.0-elliptic-key\model.sig", "--key", "$T\keys\signing-key-pub.pem", "--ignore-path", "ignore-me")
if (-not $o.StartsWith("verified: ")) { Fail "verify (key): $o" }
Ok "vetted verify, key: $o"
$SigArgs = @("--identity", "stefanb@us.ibm.com", "--issuer", "https://sigstore.verify.ibm.com/oauth2", "--ignore-path", "ignore-me")
$o = Expect 0 "verify-sigstore" "$AppDir\vetted.exe" (@("verify", "$T\v1.1.0-sigstore", "--signature", "$T\v1.1.0-sigstore\model.sig") + $SigArgs)
if (-not $o.StartsWith("verified: ")) { Fail "verify (sigstore): $o" }
Ok "vetted verify, Sigstore keyless: $o"
Copy-Item -Recurse "$T\v1.1.0-sigstore" "$T\tampered"
$bytes = [IO.File]::ReadAllBytes("$T\tampered\signme-1"); $bytes[0] = $bytes[0] -bxor 1
[IO.File]::WriteAllBytes("$T\tampered\signme-1", $bytes)
$o = Expect 1 "verify-tampered" "$AppDir\vetted.exe" (@("verify", "$T\tampered", "--signature", "$T\tampered\model.sig") + $SigArgs)
if (-not $o.StartsWith("refused: ")) { Fail "tampered: $o" }
Ok "vetted verify, tampered copy refused (exit 1): $o"

$o = Expect 0 "gui" "$AppDir\vetted.exe" @() @{ "VETTED_GUI_SMOKE" = "1" }
if ($o -notmatch "^gui-smoke: painted 'Vetted'") { Fail "GUI printed: $o" }
Ok "desktop app: $o"

$W = "$T\publisher"
New-Item -ItemType Directory -Path $W | Out-Null
Expect 0 "keygen" "$AppDir\vetted-admin.exe" @("keygen", "--out", "$W\keys") | Out-Null
$spec = @{ id = "org.vetted.smoke"; name = "Smoke-test catalog"; publisher = "Vetted smoke test"; version = 1;
           valid_days = 30; models = @(@{ id = "smollm2-smoke"; name = "SmolLM2 135M Instruct";
           publisher = "Hugging Face (HuggingFaceTB)"; license = "Apache-2.0"; family = "SmolLM2";
           quantization = "Q4_1"; path = (Resolve-Path $Gguf).Path; runtime = @{ context_length = 2048 } }) }
$spec | ConvertTo-Json -Depth 5 | Set-Content -Encoding utf8NoBOM "$W\spec.json"
Expect 0 "build-catalog" "$AppDir\vetted-admin.exe" @("build-catalog", "$W\spec.json", "--key", "$W\keys\signing-key.pem",
    "--out", "$W\catalog") | Out-Null
Ok "vetted-admin built and signed a catalog"
Expect 0 "catalog-add" "$AppDir\vetted.exe" @("catalog", "add", "$W\catalog\catalog.json", "--key", "$W\keys\signing-key.pub.pem") | Out-Null
$o = Expect 0 "pull" "$AppDir\vetted.exe" @("pull", "smollm2-smoke")
if ($o -notmatch "(?m)^installed: smollm2-smoke") { Fail "pull printed: $o" }
Ok "vetted pull"
$o = Expect 0 "chat" "$AppDir\vetted.exe" @("chat", "smollm2-smoke", "--prompt", "Say hi", "--max-tokens", "8",
    "--temperature", "0", "--seed", "1")
if (-not $o) { Fail "chat printed nothing" }
Ok "vetted chat through the packaged llama.cpp answered: $o"

# Uninstall: the app goes, the user's data stays.
$before = Get-ChildItem -Recurse -File "$T\vetted-home" | Get-FileHash | ForEach-Object Hash
$p = Start-Process -FilePath "$AppDir\unins000.exe" -Wait -PassThru -ArgumentList @("/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART")
if ($p.ExitCode -ne 0) { Fail "uninstaller exited $($p.ExitCode)" }
Start-Sleep -Seconds 2   # the uninstaller removes itself from a child process
if (Test-Path "$AppDir\vetted.exe") { Fail "uninstall left vetted.exe" }
if (Test-Path $StartMenu) { Fail "uninstall left the Start-menu entry" }
$after = Get-ChildItem -Recurse -File "$T\vetted-home" | Get-FileHash | ForEach-Object Hash
if (Compare-Object $before $after) { Fail "the user's data changed on uninstall" }
Ok "uninstalled: app and Start-menu entry gone; the user's data ($($after.Count) files) kept"
Write-Output "smoke-test: $($script:Passed) passed, 0 failed"
