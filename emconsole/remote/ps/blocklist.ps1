$Result = $Blocking
