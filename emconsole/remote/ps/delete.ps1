# Back every artifact of the given mitigations up to a file on the server, then remove them.
$Targets = @($Found | Where-Object { $n = $_.name; @($Ids | Where-Object { ($n -like ('EEMS ' + $_ + '.*')) -or ($n -like ('EEMS ' + $_ + ' *')) }).Count -gt 0 })
$SvcBefore = @()
$PoolBefore = @()
$Removed = @()
$Remaining = @()
$SvcAfter = @()
$PoolAfter = @()
$Backup = $null
$File = ''
if ($Code -eq '') {
    try {
        foreach ($n in $Services) {
            $w = Get-CimInstance -ClassName Win32_Service -Filter "Name='$n'"
            $SvcBefore = $SvcBefore + @([pscustomobject]@{ name = $n; present = ($null -ne $w); state = [string]$w.State; start_mode = [string]$w.StartMode })
        }
        foreach ($n in $AppPools) {
            $st = ''
            try { $st = [string](Get-WebAppPoolState -Name $n).Value } catch { $st = '' }
            $PoolBefore = $PoolBefore + @([pscustomobject]@{ name = $n; present = ($st -ne ''); state = $st })
        }
        $Backup = [pscustomobject]@{ schema = 1; backup_id = $BackupId; computer = $Computer; created = $Now; ids = $Ids; artifacts = $Targets; services = $SvcBefore; app_pools = $PoolBefore; blocked_before = $Before }
        $dirB = Join-Path $env:ProgramData 'emconsole\backups'
        if (-not (Test-Path $dirB)) { New-Item -ItemType Directory -Force -Path $dirB | Out-Null }
        $File = Join-Path $dirB ($BackupId + '.json')
        if (Test-Path $File) {
            $Code = 'backup_exists'
            $ErrMsg = 'a backup named ' + $BackupId + ' already exists'
        } else {
            Set-Content -Path $File -Value ($Backup | ConvertTo-Json -Depth 10 -Compress) -Encoding UTF8
            if (-not (Test-Path $File)) { $Code = 'backup_failed'; $ErrMsg = 'the backup file was not written' }
        }
    } catch {
        $Code = 'backup_failed'
        $Err = $_
    }
}
if ($Code -eq '') {
    foreach ($a in $Targets) {
        try {
            Remove-WebConfigurationProperty -PSPath $a.pspath -Filter $a.filter -Name '.' -AtElement @{ name = $a.name }
            $Removed = $Removed + @($a.name)
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'remove ' + $a.name; err = $_ })
        }
    }
    foreach ($s in $SvcBefore) {
        try {
            if ($s.present -and ($s.start_mode -eq 'Disabled')) { Set-Service -Name $s.name -StartupType Automatic }
            if ($s.present -and ($s.state -ne 'Running')) { Start-Service -Name $s.name }
            $w = Get-CimInstance -ClassName Win32_Service -Filter ("Name='" + $s.name + "'")
            $SvcAfter = $SvcAfter + @([pscustomobject]@{ name = $s.name; present = ($null -ne $w); state = [string]$w.State; start_mode = [string]$w.StartMode })
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'service ' + $s.name; err = $_ })
        }
    }
    foreach ($p in $PoolBefore) {
        try {
            if ($p.present -and ($p.state -ne 'Started')) { Start-WebAppPool -Name $p.name }
            $PoolAfter = $PoolAfter + @([pscustomobject]@{ name = $p.name; present = $p.present; state = [string](Get-WebAppPoolState -Name $p.name).Value })
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'app pool ' + $p.name; err = $_ })
        }
    }
    foreach ($a in $Targets) {
        if (@(Get-WebConfiguration -PSPath $a.pspath -Filter ($a.filter + '/' + $a.element) | Where-Object { [string]$_.name -eq $a.name }).Count -gt 0) { $Remaining = $Remaining + @($a.name) }
    }
}
$Result = [pscustomobject]@{ backup_id = $BackupId; backup_file = $File; backup = $Backup; removed = $Removed; remaining = $Remaining; services = $SvcAfter; app_pools = $PoolAfter; blocking = $Blocking }
