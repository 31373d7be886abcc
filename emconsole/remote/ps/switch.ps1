# MitigationsEnabled on this server or on the organisation, then read back.
$Before = $null
$After = $null
$Verified = $false
if ($Code -eq '') {
    try {
        if ($Scope -eq 'org') {
            $Before = (Get-OrganizationConfig).MitigationsEnabled
            Set-OrganizationConfig -MitigationsEnabled $Enabled
        } else {
            $Before = (Get-ExchangeServer -Identity $Identity).MitigationsEnabled
            Set-ExchangeServer -Identity $Identity -MitigationsEnabled $Enabled
        }
        foreach ($try in @(1, 2, 3, 4, 5)) {
            if (-not $Verified) {
                if ($Scope -eq 'org') { $After = (Get-OrganizationConfig).MitigationsEnabled } else { $After = (Get-ExchangeServer -Identity $Identity).MitigationsEnabled }
                $Verified = ($After -eq $Enabled)
            }
        }
    } catch {
        $Code = 'exchange_error'
        $Err = $_
    }
}
$Result = [pscustomobject]@{ scope = $Scope; enabled = $Enabled; before = $Before; after = $After; verified = $Verified }
