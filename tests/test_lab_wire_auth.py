"""Authentication and TLS of the lab, with plain pywinrm: Basic over HTTPS, NTLM with encryption,
client certificates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import winrm
from emconsole.backends.lab.fleet import LabFleet
from emconsole.backends.lab.spec import LabSpec, SpecError
from emconsole.backends.lab.wire.tls import LabCA
from labfixture import lab_credentials

LabFactory = Callable[..., LabFleet]


def test_basic_over_https_with_the_lab_ca(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, scheme="https")
    assert fleet.ca_path is not None and fleet.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    s = winrm.Session(
        fleet.endpoint(2),
        auth=lab_credentials(fleet),
        transport="ssl",
        proxy=None,
        ca_trust_path=str(fleet.ca_path),
    )
    result = s.run_ps("Get-ExchangeServer")
    assert result.status_code == 1 and b"is not recognized" in result.std_err


def test_https_fails_with_default_validation(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, scheme="https")
    s = winrm.Session(
        fleet.endpoint(1), auth=lab_credentials(fleet), transport="ssl", proxy=None, ca_trust_path=None
    )
    with pytest.raises(requests.exceptions.SSLError):
        s.run_ps("Get-Date")


@pytest.mark.parametrize("kind", ["wrong-name", "expired"])
def test_tls_fault_fails_validation_even_with_the_lab_ca(lab_factory: LabFactory, kind: str) -> None:
    fleet = lab_factory(servers=2, scheme="https", faults=f"tls={kind}:2")
    good = winrm.Session(
        fleet.endpoint(1),
        auth=lab_credentials(fleet),
        transport="ssl",
        proxy=None,
        ca_trust_path=str(fleet.ca_path),
    )
    assert good.run_ps("$env:COMPUTERNAME").std_out == b"LAB-EX01\r\n"
    bad = winrm.Session(
        fleet.endpoint(2),
        auth=lab_credentials(fleet),
        transport="ssl",
        proxy=None,
        ca_trust_path=str(fleet.ca_path),
    )
    with pytest.raises(requests.exceptions.SSLError):
        bad.run_ps("Get-Date")


def test_wrong_password_and_wrong_scheme_are_invalid_credentials(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    user, _ = lab_credentials(fleet)
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        winrm.Session(fleet.endpoint(1), auth=(user, "nope"), transport="basic", proxy=None).run_ps("x")
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        winrm.Session(fleet.endpoint(1), auth=lab_credentials(fleet), transport="ntlm", proxy=None).run_ps(
            "x"
        )


def test_basic_with_domain_prefix_is_accepted(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    user, password = lab_credentials(fleet)
    s = winrm.Session(fleet.endpoint(1), auth=(f"LAB\\{user}", password), transport="basic", proxy=None)
    assert s.run_ps("x").status_code == 1


def test_allow_unencrypted_false_refuses_basic_over_http(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, allow_unencrypted=False)
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        winrm.Session(fleet.endpoint(1), auth=lab_credentials(fleet), transport="basic", proxy=None).run_ps(
            "x"
        )


def test_ntlm_with_message_encryption_over_http(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, auth="ntlm", allow_unencrypted=False)
    user, password = lab_credentials(fleet)
    s = winrm.Session(fleet.endpoint(2), auth=(f"LAB\\{user}", password), transport="ntlm", proxy=None)
    for _ in range(2):
        result = s.run_ps("Get-Mitigations")
        assert result.status_code == 1 and b"'Get-Mitigations' is not recognized" in result.std_err
    snap = fleet.counters.snapshot()
    assert snap["plaintext_soap_bodies"] == 0
    assert snap["encrypted_bodies"] == 10  # every SOAP request of both run_ps calls
    assert snap["content_types"]["multipart/encrypted"] == 10  # the rest: the empty priming POSTs
    assert snap["by_action"]["Receive"] == 2


def test_ntlm_wrong_password_is_invalid_credentials(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, auth="ntlm")
    user, _ = lab_credentials(fleet)
    s = winrm.Session(fleet.endpoint(1), auth=(user, "wrong"), transport="ntlm", proxy=None)
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        s.run_ps("x")


def test_wrong_credentials_fault_refuses_the_right_password(lab_factory: LabFactory) -> None:
    for auth in ("basic", "ntlm"):
        fleet = lab_factory(servers=2, auth=auth, faults="wrong-credentials:1")
        good = winrm.Session(fleet.endpoint(2), auth=lab_credentials(fleet), transport=auth, proxy=None)
        assert good.run_ps("x").status_code == 1
        bad = winrm.Session(fleet.endpoint(1), auth=lab_credentials(fleet), transport=auth, proxy=None)
        with pytest.raises(winrm.exceptions.InvalidCredentialsError):
            bad.run_ps("x")


def _cert_session(fleet: LabFleet, number: int, cert: Path, key: Path) -> winrm.Session:
    return winrm.Session(
        fleet.endpoint(number),
        auth=("", ""),  # the certificate is the credential
        transport="certificate",
        cert_pem=str(cert),
        cert_key_pem=str(key),
        ca_trust_path=str(fleet.ca_path),
        proxy=None,
    )


def test_client_certificate_auth_maps_the_subject_to_the_lab_account(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    fleet = lab_factory(servers=2, scheme="https", auth="certificate", faults="wrong-credentials:1")
    assert fleet.client_cert is not None and fleet.ca_path is not None
    cert, key = fleet.client_cert
    assert cert.parent == fleet.ca_path.parent and (key.stat().st_mode & 0o777) == 0o600
    result = _cert_session(fleet, 2, cert, key).run_ps("$env:COMPUTERNAME; $env:USERNAME")
    assert result.std_out == b"LAB-EX02\r\nlabadmin\r\n"
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):  # the password is not accepted
        winrm.Session(
            fleet.endpoint(2), auth=lab_credentials(fleet), transport="ssl", ca_trust_path=str(fleet.ca_path),
            proxy=None,
        ).run_ps("1")
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):  # the fault refuses a good certificate
        _cert_session(fleet, 1, cert, key).run_ps("1")
    # A certificate another CA signed is refused by TLS: the server hangs up (TLS 1.3 sends the client
    # certificate after the client's handshake ends) or the handshake fails (SSLError).
    other = LabCA(tmp_path)
    with pytest.raises(requests.exceptions.ConnectionError):
        _cert_session(fleet, 2, *other.issue_client("labadmin", "LAB")).run_ps("1")
    assert fleet.ca is not None  # signed by the lab CA, but for an account the lab does not map
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        _cert_session(fleet, 2, *fleet.ca.issue_client("mallory", "LAB", stem="mallory")).run_ps("1")


def test_certificate_auth_needs_https() -> None:
    with pytest.raises(SpecError, match="needs scheme https"):
        LabSpec(auth="certificate").validate()
