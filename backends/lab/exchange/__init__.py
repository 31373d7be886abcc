"""The lab's Exchange organisation: shared directory, per-server Windows/IIS/EM state, cmdlets,
the EM engine on a virtual clock, PowerShell-level faults and the ``ExchangeHost``."""
