# Errors are kept as records until here, then normalised to strings; exactly one JSON document, last.
$ErrId = ''
$ErrType = ''
if ($null -ne $Err) {
    $ErrId = [string]$Err.FullyQualifiedErrorId
    $ErrType = [string]$Err.CategoryInfo.Reason
    $ErrMsg = [string]$Err.Exception.Message
}
$Probs = @($Problems | ForEach-Object { [pscustomobject]@{ step = [string]$_.step; error_id = [string]$_.err.FullyQualifiedErrorId; error_type = [string]$_.err.CategoryInfo.Reason; message = [string]$_.err.Exception.Message + [string]$_.text } })
$Doc = [ordered]@{ schema = $Schema; operation = $Operation; code = $Code; error_id = $ErrId; error_type = $ErrType; error = $ErrMsg; computer = $Computer; time = $Now; problems = $Probs; result = $Result }
$Doc | ConvertTo-Json -Depth 12 -Compress
