# Load the Exchange shell the way the server's config says; report why it failed, by error ID.
if (($Code -eq '') -and $NeedEms) {
    try {
        if ($Ems -eq 'snapin') {
            Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn
        } else {
            . (Join-Path $env:ExchangeInstallPath 'bin\RemoteExchange.ps1')
            Connect-ExchangeServer -Auto -ClientApplication:ManagementShell | Out-Null
        }
    } catch {
        $Code = 'ems_not_loadable'
        $Err = $_
        if (([string]$_.FullyQualifiedErrorId -like '*ADOperation*') -or ([string]$_.CategoryInfo.Reason -like '*ADOperation*')) { $Code = 'ad_second_hop' }
    }
}
