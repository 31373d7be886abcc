# Local state: events and the console's backups (services, pools and rules come before).
if ($DoScan) {
    $Events = @(Get-WinEvent -FilterHashtable @{ LogName = 'Application'; ProviderName = 'MSExchange Mitigation Service' } -MaxEvents $MaxEvents -ErrorAction SilentlyContinue | ForEach-Object { [pscustomobject]@{ id = $_.Id; time = $_.TimeCreated.ToUniversalTime().ToString('o'); level = [string]$_.LevelDisplayName; provider = [string]$_.ProviderName; message = [string]$_.Message; record_id = $_.RecordId } })
    $dirB = Join-Path $env:ProgramData 'emconsole\backups'
    if (Test-Path $dirB) {
        $Backups = @(Get-ChildItem -Path $dirB -Filter '*.json' | ForEach-Object { [pscustomobject]@{ name = [string]$_.Name; size = $_.Length; modified = $_.LastWriteTime.ToUniversalTime().ToString('o') } })
    }
}
$Result = [pscustomobject]@{ server = $Server; org_enabled = $OrgEnabled; mitigations = $Rows; mitigations_output = $RowText; services = $Svcs; app_pools = $Pools; artifacts = $Found; events = $Events; backups = $Backups }
