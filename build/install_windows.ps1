<#
.SYNOPSIS
    Installs the DMPlan Excel add-in for the current Windows user (no administrator rights needed).

.DESCRIPTION
    What it does, in the style of `xlwings addin install`:
      1. copies the DMPlan bundle (the folder holding dmplan.exe) to %LOCALAPPDATA%\Programs\DMPlan,
         unless -Python is given (then DMPlan runs on that Python, which must have `pip install dmplan`);
      2. copies dmplan.xlam into the user's Excel start-up folder (%APPDATA%\Microsoft\Excel\XLSTART),
         so Excel loads it on every start and shows the DMPlan ribbon tab;
      3. writes the add-in's config file %USERPROFILE%\.myaddin\myaddin.conf with INTERPRETER_WIN
         pointing at dmplan.exe (or at python.exe) and "UDF Modules" = dmplan (the module whose
         worksheet functions DMPlan > Import functions imports). "myaddin" is the VBA project name of
         the add-in (xlwings' ribbon template); its RunPython reads this file. Other keys are kept.
      4. sets INTERPRETER_WIN in xlwings' own user config (%USERPROFILE%\.xlwings\xlwings.conf) only
         when that file does not set one yet, so the standalone dmplan_demo.xlsm runs too without
         changing existing xlwings projects.
    Run it from the unpacked bundle folder, in Windows PowerShell:
        powershell -ExecutionPolicy Bypass -File .\install_windows.ps1
    Close Excel first. Remove everything again with -Uninstall.

.PARAMETER Python
    Full path of a python.exe that has DMPlan installed (pip install dmplan); default: use the bundle.

.PARAMETER Solver
    Optional default solver written to myaddin.conf (key "solver"); a workbook's Settings table wins.

.PARAMETER TimeLimit
    Optional default time limit in seconds (key "time_limit").

.PARAMETER Uninstall
    Removes the add-in from XLSTART, the installed bundle and DMPlan's keys from myaddin.conf.
#>
[CmdletBinding()]
param(
    [string]$Python = "",
    [string]$Solver = "",
    [string]$TimeLimit = "",
    [switch]$Uninstall
)

$ErrorActionPreference = "Stop"
$Here = Split-Path -Parent $MyInvocation.MyCommand.Path
$InstallDir = Join-Path $env:LOCALAPPDATA "Programs\DMPlan"
$XlStart = Join-Path $env:APPDATA "Microsoft\Excel\XLSTART"
$AddinConf = Join-Path $env:USERPROFILE ".myaddin\myaddin.conf"
$XlwingsConf = Join-Path $env:USERPROFILE ".xlwings\xlwings.conf"

function Read-Conf([string]$Path) {
    # xlwings config files: one "KEY","value" pair per line (read by VBA's Input #).
    $entries = [ordered]@{}
    if (Test-Path -LiteralPath $Path) {
        foreach ($line in Get-Content -LiteralPath $Path) {
            if ($line -match '^\s*"([^"]*)"\s*,\s*"([^"]*)"') { $entries[$Matches[1]] = $Matches[2] }
        }
    }
    return $entries
}

function Write-Conf([string]$Path, $Entries) {
    $folder = Split-Path -Parent $Path
    if (-not (Test-Path -LiteralPath $folder)) { New-Item -ItemType Directory -Path $folder | Out-Null }
    $lines = foreach ($key in $Entries.Keys) { '"{0}","{1}"' -f $key, $Entries[$key] }
    # VBA reads the file in the ANSI code page: write it that way (Windows PowerShell's "Default").
    Set-Content -LiteralPath $Path -Value $lines -Encoding Default
}

function Set-Key($Entries, [string]$Key, [string]$Value) {
    foreach ($existing in @($Entries.Keys)) {
        if ($existing -ieq $Key) { $Entries.Remove($existing) }
    }
    $Entries[$Key] = $Value
}

function Test-ExcelRunning {
    return [bool](Get-Process -Name EXCEL -ErrorAction SilentlyContinue)
}

if (Test-ExcelRunning) {
    Write-Warning "Excel is running: close it first, then run this script again."
    exit 1
}

if ($Uninstall) {
    Remove-Item -LiteralPath (Join-Path $XlStart "dmplan.xlam") -ErrorAction SilentlyContinue
    if (Test-Path -LiteralPath $InstallDir) { Remove-Item -LiteralPath $InstallDir -Recurse -Force }
    $conf = Read-Conf $AddinConf
    foreach ($key in @("INTERPRETER_WIN", "UDF Modules", "solver", "time_limit")) {
        foreach ($existing in @($conf.Keys)) { if ($existing -ieq $key) { $conf.Remove($existing) } }
    }
    if (Test-Path -LiteralPath $AddinConf) { Write-Conf $AddinConf $conf }
    Write-Host "DMPlan removed. (xlwings.conf was left as it is.)"
    exit 0
}

# ---------------------------------------------------------------- the add-in file
$Xlam = @((Join-Path $Here "dmplan.xlam"), (Join-Path $Here "..\xlsm\dmplan.xlam")) |
    Where-Object { Test-Path -LiteralPath $_ } | Select-Object -First 1
if (-not $Xlam) { throw "dmplan.xlam not found next to this script (run it from the DMPlan bundle folder)." }

# ---------------------------------------------------------------- the interpreter
if ($Python) {
    if (-not (Test-Path -LiteralPath $Python)) { throw "Python not found: $Python" }
    & $Python -c "import dmplan, dmplan.addin.xl" 2>$null
    if ($LASTEXITCODE -ne 0) { throw "$Python cannot import DMPlan: run '$Python -m pip install dmplan' first." }
    $Interpreter = (Resolve-Path -LiteralPath $Python).Path
} else {
    $Exe = Join-Path $Here "dmplan.exe"
    if (-not (Test-Path -LiteralPath $Exe)) {
        throw "dmplan.exe not found next to this script. Use the DMPlan bundle, or pass -Python C:\path\to\python.exe."
    }
    if ((Resolve-Path -LiteralPath $Here).Path -ne $InstallDir) {
        Write-Host "Copying the DMPlan bundle to $InstallDir ..."
        if (Test-Path -LiteralPath $InstallDir) { Remove-Item -LiteralPath $InstallDir -Recurse -Force }
        New-Item -ItemType Directory -Path $InstallDir | Out-Null
        Copy-Item -Path (Join-Path $Here "*") -Destination $InstallDir -Recurse -Force
    }
    $Interpreter = Join-Path $InstallDir "dmplan.exe"
    # The bundle's executable answers `-c` like python.exe: check that before registering it.
    & $Interpreter -c "import dmplan, dmplan.addin.xl"
    if ($LASTEXITCODE -ne 0) { throw "$Interpreter does not start; is the bundle complete?" }
}

# ---------------------------------------------------------------- register the add-in
if (-not (Test-Path -LiteralPath $XlStart)) { New-Item -ItemType Directory -Path $XlStart | Out-Null }
Copy-Item -LiteralPath $Xlam -Destination (Join-Path $XlStart "dmplan.xlam") -Force
# Files downloaded from the internet carry a Mark of the Web that makes Excel block the add-in's macros.
Unblock-File -LiteralPath (Join-Path $XlStart "dmplan.xlam") -ErrorAction SilentlyContinue

$conf = Read-Conf $AddinConf
Set-Key $conf "INTERPRETER_WIN" $Interpreter
Set-Key $conf "UDF Modules" "dmplan"  # the worksheet functions DMPLAN, DMPARETO, MIXPLAN
if ($Solver) { Set-Key $conf "solver" $Solver }
if ($TimeLimit) { Set-Key $conf "time_limit" $TimeLimit }
Write-Conf $AddinConf $conf

$xlwingsConf = Read-Conf $XlwingsConf
if (-not ($xlwingsConf.Keys | Where-Object { $_ -ieq "INTERPRETER_WIN" })) {
    Set-Key $xlwingsConf "INTERPRETER_WIN" $Interpreter
    Write-Conf $XlwingsConf $xlwingsConf
    Write-Host "Set INTERPRETER_WIN in $XlwingsConf (for the standalone demo workbook)."
} else {
    Write-Host "Left $XlwingsConf as it is (it already sets INTERPRETER_WIN)."
}

Write-Host ""
Write-Host "DMPlan is installed:"
Write-Host "  add-in       $(Join-Path $XlStart 'dmplan.xlam')"
Write-Host "  interpreter  $Interpreter"
Write-Host "  config       $AddinConf"
Write-Host "Start Excel: the ribbon has a DMPlan tab. If Excel asks, enable macros for dmplan.xlam"
Write-Host "(File > Options > Trust Center > Trusted Locations lists XLSTART as trusted by default)."
Write-Host "Worksheet functions: click DMPlan > Import functions once. xlwings writes them into the add-in's"
Write-Host "VBA, which needs File > Options > Trust Center > Macro Settings > 'Trust access to the VBA project"
Write-Host "object model' switched on."
