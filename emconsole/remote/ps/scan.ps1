# Every EEMS rewrite rule and precondition at server level, in both sites and in their applications.
# A rule inherited by a child path is reported once, at the first (outermost) path it is seen.
# Section by section, what each section means worked out once (not once per path: 75 times).
$Found = @()
if ($DoScan) {
$Locs = @('MACHINE/WEBROOT/APPHOST')
foreach ($site in @('Default Web Site', 'Exchange Back End')) {
    $Locs = $Locs + @('IIS:\Sites\' + $site)
    try {
        foreach ($app in @(Get-WebApplication -Site $site)) {
            $rel = ''
            foreach ($part in ([string]$app.path).Split('/')) { if ($part -ne '') { $rel = $rel + '\' + $part } }
            if ($rel -ne '') { $Locs = $Locs + @('IIS:\Sites\' + $site + $rel) }
        }
    } catch {
        $Problems = $Problems + @([pscustomobject]@{ step = 'applications ' + $site; err = $_ })
    }
}
$Seen = @()
foreach ($sec in @('system.webServer/rewrite/rules', 'system.webServer/rewrite/outboundRules', 'system.webServer/rewrite/outboundRules/preConditions')) {
    $el = 'rule'
    $kind = 'rule'
    $dir = 'outbound'
    if ($sec -like '*/preConditions') { $el = 'preCondition'; $kind = 'precondition' }
    if ($sec -like '*/rules') { $dir = 'inbound' }
    $filter = $sec + '/' + $el
    foreach ($loc in $Locs) {
        try {
            foreach ($r in @(Get-WebConfiguration -PSPath $loc -Filter $filter | Where-Object { [string]$_.name -like 'EEMS *' })) {
                $key = $sec + '|' + [string]$r.name
                if ($key -notin $Seen) {
                    $Seen = $Seen + @($key)
                    $cond = $r.conditions
                    if ($kind -eq 'precondition') { $cond = $r }
                    $entries = @($cond.Collection | Where-Object { $null -ne $_ } | ForEach-Object { [pscustomobject]@{ input = [string]$_.input; pattern = [string]$_.pattern; negate = [string]$_.negate } })
                    $Found = $Found + @([pscustomobject]@{
                        kind = $kind; direction = $dir; pspath = $loc; filter = $sec; element = $el; name = [string]$r.name
                        location = [string]$r.Location; item_xpath = [string]$r.ItemXPath
                        stopProcessing = [string]$r.stopProcessing; patternSyntax = [string]$r.patternSyntax; preCondition = [string]$r.preCondition
                        match = [pscustomobject]@{ url = [string]$r.match.url; serverVariable = [string]$r.match.serverVariable; pattern = [string]$r.match.pattern; filterByTags = [string]$r.match.filterByTags; preCondition = [string]$r.match.preCondition }
                        conditions = [pscustomobject]@{ logicalGrouping = [string]$cond.logicalGrouping; entries = $entries }
                        action = [pscustomobject]@{ type = [string]$r.action.type; value = [string]$r.action.value; statusCode = [string]$r.action.statusCode }
                    })
                }
            }
        } catch {
            $Problems = $Problems + @([pscustomobject]@{ step = 'rewrite ' + $loc + ' ' + $sec; err = $_ })
        }
    }
}
}
