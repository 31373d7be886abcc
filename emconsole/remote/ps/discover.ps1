# Every Exchange server the organisation knows (read-only), with what a config entry needs.
$Rows = @()
if ($Code -eq '') {
    try {
        foreach ($s in @(Get-ExchangeServer)) {
            $Rows = $Rows + @([pscustomobject]@{ name = [string]$s.Name; fqdn = [string]$s.Fqdn; version = [string]$s.AdminDisplayVersion; roles = [string]$s.ServerRole; site = [string]$s.Site; mailbox = [bool]$s.IsMailboxServer; edge = [bool]$s.IsEdgeServer })
        }
    } catch {
        $Code = 'exchange_error'
        $Err = $_
    }
}
$Result = [pscustomobject]@{ servers = $Rows }
