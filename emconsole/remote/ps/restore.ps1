# Re-create what a delete removed, from the backup file on this server (no configuration text travels).
$Backup = $null
$Restored = @()
$Present = @()
$Missing = @()
$SvcAfter = @()
$PoolAfter = @()
$File = Join-Path (Join-Path $env:ProgramData 'emconsole\backups') ($BackupId + '.json')
if ($Code -eq '') {
    if (-not (Test-Path $File)) {
        $Code = 'backup_not_found'
        $ErrMsg = 'no backup ' + $BackupId + ' on ' + $Computer
    } else {
        try {
            $Backup = Get-Content -Path $File -Raw | ConvertFrom-Json
            if ([string]$Backup.backup_id -ne $BackupId) { $Code = 'backup_unreadable'; $ErrMsg = 'the file does not hold backup ' + $BackupId }
        } catch {
            $Code = 'backup_unreadable'
            $Err = $_
        }
    }
}
if ($Code -eq '') {
    # Preconditions first: an outbound rule names its precondition.
    foreach ($a in @(@($Backup.artifacts | Where-Object { $_.kind -eq 'precondition' }) + @($Backup.artifacts | Where-Object { $_.kind -ne 'precondition' }))) {
        try {
            $sel = $a.filter + '/' + $a.element + "[@name='" + $a.name + "']"
            $coll = $sel
            if ($a.kind -eq 'rule') { $coll = $sel + '/conditions' }
            if (@(Get-WebConfiguration -PSPath $a.pspath -Filter ($a.filter + '/' + $a.element) | Where-Object { [string]$_.name -eq $a.name }).Count -gt 0) {
                $Present = $Present + @($a.name)
            } elseif ($a.name -like "*'*") {
                $Problems = $Problems + @([pscustomobject]@{ step = 'restore ' + $a.name; err = $null; text = 'a quote in the name cannot be addressed in a configuration filter' })
            } else {
                Add-WebConfigurationProperty -PSPath $a.pspath -Filter $a.filter -Name '.' -Value @{ name = $a.name }
                if ($a.stopProcessing -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter $sel -Name 'stopProcessing' -Value $a.stopProcessing }
                if ($a.patternSyntax -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter $sel -Name 'patternSyntax' -Value $a.patternSyntax }
                if ($a.preCondition -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter $sel -Name 'preCondition' -Value $a.preCondition }
                if ($a.kind -eq 'rule') {
                    if ($a.match.url -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/match') -Name 'url' -Value $a.match.url }
                    if ($a.match.serverVariable -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/match') -Name 'serverVariable' -Value $a.match.serverVariable }
                    if ($a.match.pattern -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/match') -Name 'pattern' -Value $a.match.pattern }
                    if ($a.match.filterByTags -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/match') -Name 'filterByTags' -Value $a.match.filterByTags }
                    if ($a.match.preCondition -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/match') -Name 'preCondition' -Value $a.match.preCondition }
                    if ($a.action.type -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/action') -Name 'type' -Value $a.action.type }
                    if ($a.action.value -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/action') -Name 'value' -Value $a.action.value }
                    if ($a.action.statusCode -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter ($sel + '/action') -Name 'statusCode' -Value $a.action.statusCode }
                }
                if ($a.conditions.logicalGrouping -ne '') { Set-WebConfigurationProperty -PSPath $a.pspath -Filter $coll -Name 'logicalGrouping' -Value $a.conditions.logicalGrouping }
                foreach ($e in @($a.conditions.entries)) {
                    if ($e.negate -ne '') {
                        Add-WebConfigurationProperty -PSPath $a.pspath -Filter $coll -Name '.' -Value @{ input = $e.input; pattern = $e.pattern; negate = $e.negate }
                    } else {
                        Add-WebConfigurationProperty -PSPath $a.pspath -Filter $coll -Name '.' -Value @{ input = $e.input; pattern = $e.pattern }
                    }
                }
                $Restored = $Restored + @($a.name)
            }
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'restore ' + $a.name; err = $_ })
        }
    }
    foreach ($s in @($Backup.services)) {
        try {
            if ($s.present) {
                $m = [string]$s.start_mode
                if ($m -eq 'Auto') { $m = 'Automatic' }
                if ($m -ne '') { Set-Service -Name $s.name -StartupType $m }
                if ($s.state -eq 'Stopped') { Stop-Service -Name $s.name }
            }
            $w = Get-CimInstance -ClassName Win32_Service -Filter ("Name='" + $s.name + "'")
            $SvcAfter = $SvcAfter + @([pscustomobject]@{ name = $s.name; present = ($null -ne $w); state = [string]$w.State; start_mode = [string]$w.StartMode })
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'service ' + $s.name; err = $_ })
        }
    }
    foreach ($p in @($Backup.app_pools)) {
        try {
            if ($p.present -and ($p.state -eq 'Stopped')) { Stop-WebAppPool -Name $p.name }
            $PoolAfter = $PoolAfter + @([pscustomobject]@{ name = $p.name; present = $p.present; state = [string](Get-WebAppPoolState -Name $p.name).Value })
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'app pool ' + $p.name; err = $_ })
        }
    }
    foreach ($a in @($Backup.artifacts)) {
        if (@(Get-WebConfiguration -PSPath $a.pspath -Filter ($a.filter + '/' + $a.element) | Where-Object { [string]$_.name -eq $a.name }).Count -eq 0) { $Missing = $Missing + @($a.name) }
    }
}
$Result = [pscustomobject]@{ backup_id = $BackupId; backup_file = $File; ids = @($Backup.ids); restored = $Restored; already_present = $Present; missing = $Missing; services = $SvcAfter; app_pools = $PoolAfter }
