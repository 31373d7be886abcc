# Scan only when nothing failed so far (the compare-and-set may have refused).
$DoScan = ($Code -eq '')
