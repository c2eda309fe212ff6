<#
.SYNOPSIS
Installs the Tentacle agent on a Windows host, enrolls it and starts it.

.DESCRIPTION
Copies tentacle.exe to $env:ProgramFiles\Tentacle\tentacle.exe, registers the
Windows service (tentacle.exe install), enrolls this host with the server
(tentacle.exe enroll), starts the service and prints its status. The config is
$env:ProgramData\Tentacle\agent.yaml (created with defaults if missing), the data
$env:ProgramData\Tentacle\data. Run from an elevated PowerShell (5.1 or later).

.EXAMPLE
.\install.ps1 -Server tentacle.example.com:8443 -Token TNT1.... -Binary .\tentacle.exe
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string]$Server,
    [Parameter(Mandatory = $true)][string]$Token,
    [Parameter(Mandatory = $true)][string]$Binary,
    # Re-enroll even if this host is already enrolled.
    [switch]$Force
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

function Fail([string]$Message) {
    Write-Error -Message "install.ps1: $Message" -ErrorAction Continue
    exit 1
}

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail 'must run as Administrator (start PowerShell with "Run as administrator")'
}
if (-not (Test-Path -LiteralPath $Binary -PathType Leaf)) {
    Fail "binary not found: $Binary"
}

$installDir = Join-Path $env:ProgramFiles 'Tentacle'
$exe = Join-Path $installDir 'tentacle.exe'
$configDir = Join-Path $env:ProgramData 'Tentacle'
$config = Join-Path $configDir 'agent.yaml'

# A running service keeps tentacle.exe locked: stop it before replacing the file.
$service = Get-Service -Name 'tentacle' -ErrorAction SilentlyContinue
if ($null -ne $service -and $service.Status -ne 'Stopped') {
    Write-Host '==> stopping the running tentacle service'
    Stop-Service -Name 'tentacle'
}

Write-Host "==> installing $Binary as $exe"
New-Item -ItemType Directory -Force -Path $installDir | Out-Null
Copy-Item -LiteralPath $Binary -Destination $exe -Force

# --config names the file explicitly, so it must exist: write the defaults.
if (-not (Test-Path -LiteralPath $config)) {
    New-Item -ItemType Directory -Force -Path $configDir | Out-Null
    $defaults = @(
        '# Tentacle agent configuration; see docs/CONFIGURATION.md. All settings are',
        '# optional and unknown keys are errors. Run "tentacle.exe restart" after editing.',
        '# registries:',
        '#   - registry: registry.example.com:5000',
        '#     username: deploy',
        '#     password_file: C:\ProgramData\Tentacle\registry-password',
        '# log:',
        '#   format: json',
        '#   level: info'
    )
    Set-Content -LiteralPath $config -Value $defaults -Encoding Ascii
    Write-Host "wrote $config"
}

Write-Host '==> registering the service'
# Windows PowerShell 5.1 turns redirected stderr of a native command into
# errors, which 'Stop' would make fatal: relax it for this one call.
$ErrorActionPreference = 'Continue'
$out = & $exe install --config $config 2>&1 | Out-String
$installExit = $LASTEXITCODE
$ErrorActionPreference = 'Stop'
if ($installExit -ne 0) {
    if ($out -match 'already') {
        Write-Host 'service already registered'
    } else {
        Fail "registering the service failed: $out"
    }
}

Write-Host "==> enrolling with $Server"
$enrollArgs = @('enroll', '--config', $config, '--server', $Server, '--token', $Token)
if ($Force) { $enrollArgs += '--force' }
& $exe @enrollArgs
if ($LASTEXITCODE -ne 0) {
    Fail 'enrollment failed (an enrolled host needs -Force to enroll again)'
}

Write-Host '==> starting the agent'
& $exe start
if ($LASTEXITCODE -ne 0) {
    Fail "the agent did not start; see $configDir\data\tentacle.log"
}

Write-Host '==> status'
& $exe status
exit $LASTEXITCODE
