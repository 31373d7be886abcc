# Everything the console shows for one server, in one call.
$Server = $null
$OrgEnabled = $null
$Rows = @()
$RowText = @()
if ($Code -eq '') {
    try {
        $s = Get-ExchangeServer -Identity $Identity
        $at = ''
        if ($null -ne $s.MitigationsAppliedTime) { $at = ([datetime]$s.MitigationsAppliedTime).ToUniversalTime().ToString('o') }
        $Server = [pscustomobject]@{
            name = [string]$s.Name; fqdn = [string]$s.Fqdn; version = [string]$s.AdminDisplayVersion
            enabled = $s.MitigationsEnabled; data_collection = $s.DataCollectionEnabled; proxy = [string]$s.InternetWebProxy
            applied = @($s.MitigationsApplied | Where-Object { $null -ne $_ } | ForEach-Object { [string]$_ })
            blocked = @($s.MitigationsBlocked | Where-Object { $null -ne $_ } | ForEach-Object { [string]$_ })
            applied_time = $at
        }
        $OrgEnabled = (Get-OrganizationConfig).MitigationsEnabled
    } catch {
        $Code = 'exchange_error'
        $Err = $_
    }
}
if ($Code -eq '') {
    try {
        foreach ($o in @(& (Join-Path $env:ExchangeInstallPath 'Scripts\Get-Mitigations.ps1') -Identity $Identity *>&1)) {
            if ($null -ne $o.ID) {
                $Rows = $Rows + @([pscustomobject]@{ id = [string]$o.ID; type = [string]$o.Type; description = [string]$o.Description; status = [string]$o.Status; server = [string]$o.Server })
            } else {
                $RowText = $RowText + @([string]$o)
            }
        }
    } catch {
        $Problems = $Problems + @([pscustomobject]@{ step = 'Get-Mitigations.ps1'; err = $_ })
    }
}
$Svcs = @()
$Pools = @()
$Events = @()
$Backups = @()
$DoScan = ($Code -ne 'identity_mismatch')
if ($DoScan) {
    foreach ($n in $Services) {
        try {
            $w = Get-CimInstance -ClassName Win32_Service -Filter "Name='$n'"
            $Svcs = $Svcs + @([pscustomobject]@{ name = $n; present = ($null -ne $w); state = [string]$w.State; start_mode = [string]$w.StartMode; process_id = [int]$w.ProcessId })
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'service ' + $n; err = $_ })
        }
    }
    foreach ($n in $AppPools) {
        $st = ''
        try { $st = [string](Get-WebAppPoolState -Name $n).Value } catch { $st = '' }
        $Pools = $Pools + @([pscustomobject]@{ name = $n; present = ($st -ne ''); state = $st })
    }
}
