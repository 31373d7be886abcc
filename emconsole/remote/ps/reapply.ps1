# Restart the EM service; the caller checks that it runs again under a new process ID.
$Old = 0
$New = 0
$State = ''
$StartMode = ''
if ($Code -eq '') {
    try {
        $Old = [int](Get-CimInstance -ClassName Win32_Service -Filter "Name='MSExchangeMitigation'").ProcessId
        Restart-Service -Name 'MSExchangeMitigation'
        $w = Get-CimInstance -ClassName Win32_Service -Filter "Name='MSExchangeMitigation'"
        $New = [int]$w.ProcessId
        $State = [string]$w.State
        $StartMode = [string]$w.StartMode
    } catch {
        $Code = 'powershell_error'
        $Err = $_
    }
}
$Result = [pscustomobject]@{ service = 'MSExchangeMitigation'; old_process_id = $Old; new_process_id = $New; state = $State; start_mode = $StartMode }
