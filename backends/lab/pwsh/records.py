"""The records of PowerShell's warning and information streams, as objects a merge hands to the output.

``3>&1`` / ``6>&1`` / ``*>&1`` put these objects in the output stream, where a script converts them
like any other object. Windows PowerShell 5.1's ``ToString()`` is the message text for both:
``InformationalRecord.ToString()`` (a WarningRecord) returns ``Message``, and
``InformationRecord.ToString()`` returns ``MessageData.ToString()`` — for Write-Host a
``HostInformationMessage`` whose ``ToString()`` is its ``Message``. So ``[string]$record`` and
``"$record"`` give the text, never a type name.
"""

from __future__ import annotations

from datetime import datetime

from emconsole.backends.lab.pwsh.api import PSObject

INFORMATION_RECORD = "System.Management.Automation.InformationRecord"
HOST_MESSAGE = "System.Management.Automation.HostInformationMessage"
WARNING_RECORD = "System.Management.Automation.WarningRecord"


class InformationRecord(PSObject):
    """What Write-Host writes (PowerShell 5+ sends host text through the information stream, tag PSHOST)."""

    __slots__ = ("newline",)

    def __init__(self, text: str, *, newline: bool, source: str, when: datetime) -> None:
        message = PSObject(
            {"Message": text, "NoNewLine": not newline, "ForegroundColor": None, "BackgroundColor": None},
            type_names=(HOST_MESSAGE, "System.Object"),
            to_string=text,
        )
        super().__init__(
            {"MessageData": message, "Source": source, "TimeGenerated": when, "Tags": ["PSHOST"]},
            type_names=(INFORMATION_RECORD, "System.Object"),
            to_string=text,
        )
        self.newline = newline

    @property
    def text(self) -> str:
        return self.to_string or ""

    def host_output(self) -> str:
        """The text as the host prints it when the stream is not redirected."""
        return self.text + ("\n" if self.newline else "")


class WarningRecord(PSObject):
    """A warning (Write-Warning, a cmdlet's warning) merged into the output stream."""

    __slots__ = ()

    def __init__(self, message: str) -> None:
        super().__init__(
            {"Message": message, "FullyQualifiedWarningId": "", "InvocationInfo": None},
            type_names=(WARNING_RECORD, "System.Management.Automation.InformationalRecord", "System.Object"),
            to_string=message,
        )

    @property
    def message(self) -> str:
        return self.to_string or ""
