# Common start: strict errors, no progress records, BOM-less UTF-8, identity check, empty envelope.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false
$Code = ''
$ErrMsg = ''
$Err = $null
$Problems = @()
$Result = $null
$Now = (Get-Date).ToUniversalTime().ToString('o')
$Computer = [string]$env:COMPUTERNAME
if ($Computer -ne $Identity) {
    $Code = 'identity_mismatch'
    $ErrMsg = 'this session runs on ' + $Computer + ', not on ' + $Identity
}
