; Inno Setup script for Vetted on Windows: packaging/windows/build.ps1 runs
;   iscc /DAppVersion=X.Y.Z /DSourceDir=<PyInstaller folder> /DOutputDir=<dist> vetted.iss
; Installs the PyInstaller folder (vetted.exe, vetted-admin.exe, _internal\) under Program Files,
; a Start-menu entry, optionally the folder on PATH for the command line, and an uninstaller.
; Uninstalling removes only what was installed: models, chats and the audit log
; (%LOCALAPPDATA%\Vetted) and an organisation's policy (HKLM\SOFTWARE\Policies\Vetted) stay.

#ifndef AppVersion
  #error Pass /DAppVersion=X.Y.Z
#endif
#ifndef SourceDir
  #define SourceDir "..\..\build\pyinstaller\dist\vetted"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\windows\vetted.ico"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{6C1B8E0A-3F47-4B8E-9D2A-5E7C0F1A2B3D}
AppName=Vetted
AppVersion={#AppVersion}
AppVerName=Vetted {#AppVersion}
AppPublisher=Vetted developers
AppPublisherURL=https://github.com/vetted-dev/vetted
AppSupportURL=https://github.com/vetted-dev/vetted/issues
DefaultDirName={autopf}\Vetted
DefaultGroupName=Vetted
DisableProgramGroupPage=yes
; Machine-wide by default (next to the machine's policy); a user without admin rights can pick
; "install for me only" in the dialog.
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog commandline
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=vetted-{#AppVersion}-windows-x86_64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\vetted.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes
; SOURCE_DATE_EPOCH is not honoured by Inno Setup: the installer is not reproducible (the files in it are).

[Tasks]
Name: "path"; Description: "Add Vetted to PATH (the vetted and vetted-admin commands)"; Flags: unchecked
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Vetted"; Filename: "{app}\vetted.exe"; Comment: "Run signed local language models"
Name: "{autodesktop}\Vetted"; Filename: "{app}\vetted.exe"; Tasks: desktopicon

[Registry]
; PATH for the command line (machine-wide install: HKLM; per-user: HKCU), removed on uninstall.
Root: HKA; Subkey: "{code:EnvKey}"; ValueType: expandsz; ValueName: "Path"; \
  ValueData: "{olddata};{app}"; Tasks: path; Check: NotOnPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\vetted.exe"; Description: "{cm:LaunchProgram,Vetted}"; Flags: nowait postinstall skipifsilent

[Code]
function EnvKey(Param: String): String;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

function NotOnPath(Dir: String): Boolean;
var
  Paths: String;
begin
  if not RegQueryStringValue(HKA, EnvKey(''), 'Path', Paths) then
    Paths := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Paths, Dir: String;
  P: Integer;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  if not RegQueryStringValue(HKA, EnvKey(''), 'Path', Paths) then
    exit;
  Dir := ';' + ExpandConstant('{app}');
  P := Pos(Uppercase(Dir), Uppercase(Paths));
  if P > 0 then
  begin
    Delete(Paths, P, Length(Dir));
    RegWriteExpandStringValue(HKA, EnvKey(''), 'Path', Paths);
  end;
end;
