"""The lab's PowerShell: a parser front end and an interpreter for POWERSHELL-SUBSET.md."""
