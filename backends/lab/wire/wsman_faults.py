"""The WS-Management faults the lab raises, with Windows' codes and texts (winerror.h ERROR_WSMAN_*)."""

from __future__ import annotations

from emconsole.backends.lab.wire.soap import Fault

TIMED_OUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT (0x80338029): pywinrm re-sends Receive
INVALID_SELECTORS = 2150858843  # ERROR_WSMAN_INVALID_SELECTORS (0x8033805B)
ACTION_NOT_SUPPORTED = 2150858771  # ERROR_WSMAN_ACTION_NOT_SUPPORTED (0x80338013)
MAX_SHELLS = 2150859173  # ERROR_WSMAN_QUOTA_MAX_SHELLS_PPQ (0x803381A5)
FILENAME_TOO_LONG = 2147942606  # HRESULT_FROM_WIN32(ERROR_FILENAME_EXCED_RANGE): CreateProcess refused
INVALID_PARAMETER = 2150858858  # ERROR_WSMAN_INVALID_PARAMETER (0x8033806A)

_SELECTOR_REASON = (
    "The WS-Management service cannot process the request because the request contained "
    "invalid selectors for the resource. "
)


def timed_out() -> Fault:
    text = ("The WS-Management service cannot complete the operation within the time specified in "
            "OperationTimeout.  ")
    return Fault(TIMED_OUT, "w:TimedOut", text, sender=False)


def unknown_shell(shell_id: str) -> Fault:
    message = (
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "
    )
    return Fault(INVALID_SELECTORS, "w:InvalidSelectors", _SELECTOR_REASON, message)


def unknown_command(command_id: str) -> Fault:
    message = (
        f"The Windows Remote Shell received a request to perform an operation on a command identifier "
        f"{command_id} that does not exist. Either the command has completed execution or the client "
        "specified an invalid command identifier. "
    )
    return Fault(INVALID_SELECTORS, "w:InvalidSelectors", _SELECTOR_REASON, message)


def action_not_supported(action: str) -> Fault:
    reason = "The action is not supported by the service. "
    message = f"The WS-Management service does not support the action {action} specified in the request. "
    return Fault(ACTION_NOT_SUPPORTED, "a:ActionNotSupported", reason, message)


def shell_quota(limit: int) -> Fault:
    text = (
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of "
        f"{limit} concurrent shells, which has been exceeded. Close existing shells or raise the quota for "
        "this user. "
    )
    return Fault(MAX_SHELLS, "w:QuotaLimit", text, sender=False)


def command_line_too_long() -> Fault:
    return Fault(
        FILENAME_TOO_LONG, "w:InternalError", "The filename or extension is too long. ", sender=False
    )


def invalid_request(detail: str) -> Fault:
    reason = "The WS-Management service cannot process the request because the request is not valid. "
    return Fault(INVALID_PARAMETER, "w:InvalidParameter", reason, reason + detail)
