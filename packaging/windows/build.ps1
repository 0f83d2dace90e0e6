# Builds the Windows installer and portable zip (run on a Windows host: the release workflow's
# windows runner; never run on the Linux dev machine). Mirrors packaging/linux/build:
#   dist\vetted-<version>-windows-x86_64-setup.exe   Inno Setup: Program Files, Start menu, uninstaller
#   dist\vetted-<version>-windows-x86_64.zip         the same folder, portable
# Needs: the venv's python with the gui, runtime and package extras (llama-cpp-python built with
# CMAKE_ARGS=-DGGML_NATIVE=OFF), Pillow (PNG -> .ico), and Inno Setup 6 (iscc; preinstalled on
# GitHub's windows runners).
param(
    [string]$Python = "python",
    [string]$Iscc = "iscc"
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$Root = Resolve-Path "$PSScriptRoot\..\.."
Set-Location $Root

function Run { param([string]$Exe, [string[]]$ArgList)
    & $Exe @ArgList
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($ArgList -join ' ') exited $LASTEXITCODE" }
}

$Version = & $Python -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])"
if (-not $env:SOURCE_DATE_EPOCH) { $env:SOURCE_DATE_EPOCH = (git log -1 --format=%ct) }
$env:VETTED_VERSION = $Version
$env:PYTHONHASHSEED = "0"
New-Item -ItemType Directory -Force -Path dist, build\windows | Out-Null

# 0. The icon (PyInstaller converts the PNG for the .exe itself; Inno Setup needs an .ico).
Run $Python @("-c", "from PIL import Image; Image.open('packaging/icons/vetted.png').save('build/windows/vetted.ico', sizes=[(16,16),(32,32),(48,48),(64,64),(128,128),(256,256)])")

# 1. Freeze (the same spec as Linux and macOS).
Run $Python @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
              "--distpath", "build\pyinstaller\dist", "--workpath", "build\pyinstaller\work", "packaging\vetted.spec")
$App = "build\pyinstaller\dist\vetted"
# vetted-admin: the same executable under that name (launch.py dispatches on it; no symlinks for
# ordinary users on Windows, so a copy: ~15 MB on disk, next to nothing in the solid-compressed installer).
Copy-Item "$App\vetted.exe" "$App\vetted-admin.exe" -Force

# 2. The installer.
Run $Iscc @("/Q", "/DAppVersion=$Version", "/DSourceDir=$Root\$App", "/DIconFile=$Root\build\windows\vetted.ico",
            "/DOutputDir=$Root\dist", "packaging\windows\vetted.iss")
$Setup = "dist\vetted-$Version-windows-x86_64-setup.exe"

# 3. The portable zip.
$Zip = "dist\vetted-$Version-windows-x86_64.zip"
Remove-Item $Zip -ErrorAction SilentlyContinue
Compress-Archive -Path "$App\*" -DestinationPath $Zip -CompressionLevel Optimal

# Optional Authenticode signing (not wired: no certificate yet). With one, sign vetted.exe and
# vetted-admin.exe before step 2 and the setup .exe after it with signtool /fd sha256 /tr <TSA>.
foreach ($f in @($Setup, $Zip)) {
    Write-Output "built: $f"
    Get-FileHash -Algorithm SHA256 $f | ForEach-Object { "$($_.Hash.ToLower())  $f" }
}
