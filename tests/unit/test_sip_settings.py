"""SIP settings: VDX_* knobs become the server configuration; TLS gets a self-signed default."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from vdx.settings import Settings
from vdx.sip import config_from_settings
from vdx.sip.tls import server_context


def test_self_signed_certificate_in_data_dir_by_default(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, sip_domain="video.example.dk", sip_max_invites_per_second=3, sip_require_srtp=True
    )
    config = config_from_settings(settings)
    assert config.port == 5060 and config.tls_port == 5061
    assert config.tls_cert == str(tmp_path / "sip-tls-cert.pem")
    cert = x509.load_pem_x509_certificate(Path(config.tls_cert).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "video.example.dk" in names.get_values_for_type(x509.DNSName)
    assert isinstance(server_context(Path(config.tls_cert), Path(str(config.tls_key))), ssl.SSLContext)
    assert config.max_invites_per_second == 3 and config.media.require_srtp
    # Created once: a restart keeps the same certificate (room systems may have pinned it).
    assert config_from_settings(settings).tls_cert == config.tls_cert
    assert (tmp_path / "sip-tls-cert.pem").read_bytes() == Path(config.tls_cert).read_bytes()


def test_configured_certificate_and_tls_off(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    config = config_from_settings(Settings(data_dir=tmp_path, sip_tls_cert=cert, sip_tls_key=key))
    assert (config.tls_cert, config.tls_key) == (str(cert), str(key))
    assert not (tmp_path / "sip-tls-cert.pem").exists()
    off = config_from_settings(Settings(data_dir=tmp_path / "x", sip_tls_port=0))
    assert off.tls_port is None and not (tmp_path / "x").exists()


def test_media_timeout_defaults_to_thirty_seconds_and_zero_turns_it_off(tmp_path: Path) -> None:
    assert config_from_settings(Settings(data_dir=tmp_path, sip_tls_port=0)).media_timeout == 30.0
    assert (
        config_from_settings(Settings(data_dir=tmp_path, sip_tls_port=0, sip_media_timeout=4)).media_timeout
        == 4
    )
    assert (
        config_from_settings(Settings(data_dir=tmp_path, sip_tls_port=0, sip_media_timeout=0)).media_timeout
        is None
    )
