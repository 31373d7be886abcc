# Compare-and-set of MitigationsBlocked: refuse when the list is not the one the console last read.
$Before = @()
$Wanted = @()
$After = @()
$Verified = $false
if (($Code -eq '') -and ($Mode -ne '')) {
    try {
        $Before = @((Get-ExchangeServer -Identity $Identity).MitigationsBlocked | Where-Object { $null -ne $_ } | ForEach-Object { [string]$_ })
        if ((@($Before | Where-Object { $_ -notin $Expected }).Count -gt 0) -or (@($Expected | Where-Object { $_ -notin $Before }).Count -gt 0)) {
            $Code = 'changed_since_read'
            $ErrMsg = 'MitigationsBlocked changed since it was read'
        } else {
            if ($Mode -eq 'block') {
                $Wanted = @($Before) + @($BlockIds | Where-Object { $_ -notin $Before })
            } else {
                $Wanted = @($Before | Where-Object { $_ -notin $BlockIds })
            }
            Set-ExchangeServer -Identity $Identity -MitigationsBlocked $Wanted
            foreach ($try in @(1, 2, 3, 4, 5)) {
                if (-not $Verified) {
                    $After = @((Get-ExchangeServer -Identity $Identity).MitigationsBlocked | Where-Object { $null -ne $_ } | ForEach-Object { [string]$_ })
                    $Verified = (@($After | Where-Object { $_ -notin $Wanted }).Count -eq 0) -and (@($Wanted | Where-Object { $_ -notin $After }).Count -eq 0)
                }
            }
        }
    } catch {
        $Code = 'exchange_error'
        $Err = $_
    }
}
$Blocking = [pscustomobject]@{ mode = $Mode; expected = $Expected; before = $Before; wanted = $Wanted; after = $After; verified = $Verified }
