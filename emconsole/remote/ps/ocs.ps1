# Test-MitigationServiceConnectivity.ps1: every line it prints (Result:/Message: among them).
$Lines = @()
if ($Code -eq '') {
    try {
        foreach ($o in @(& (Join-Path $env:ExchangeInstallPath 'Scripts\Test-MitigationServiceConnectivity.ps1') *>&1)) {
            $t = ([string]$o).Trim()
            if ($t -ne '') { $Lines = $Lines + @($t) }
        }
    } catch {
        $Code = 'powershell_error'
        $Err = $_
    }
}
$Result = [pscustomobject]@{ lines = $Lines }
